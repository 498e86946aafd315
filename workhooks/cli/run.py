"""The long-running processes: `serve` (receiver), `worker`, `scheduler`, and `up`, all of them at once."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
import structlog

from workhooks.cli import common, exposure, local
from workhooks.cli.check import describe
from workhooks.cli.migrate import refuse_unreadable
from workhooks.config.loading import config_path
from workhooks.core.logs import colour_wanted
from workhooks.store import keys, schema

STOP_TIMEOUT = 20.0  # honcho sends SIGKILL after 5 s; then `up` kills honcho itself
LEFTOVER_TIMEOUT = 5.0
MAX_RECONNECT_DELAY = 5.0  # a worker waiting for Redis retries at least this often
HEALTHY_RUN_SECONDS = 60.0
BURST_ROUNDS = 10
PROCFILE = Path(__file__).resolve().parent.parent.parent / "Procfile"


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from receiver.protocol import uvicorn_options

    config = common.load(None)  # fail fast, with the key path, before uvicorn starts
    refused = exposure.refusal(config, args.host, config_path(), os.environ)
    if refused is not None:
        print(f"workhooks: {refused}", file=sys.stderr)
        return 2
    os.environ["REDIS_URL"] = common.checked_redis_url()  # the app reads it: the embedded one, if that is it
    with contextlib.suppress(redis.RedisError):  # Redis away: the receiver starts anyway and spools
        refuse_unreadable(common.connect())
    with _processes(args.workers):
        uvicorn.run(
            "workhooks.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            **uvicorn_options(config.receiver, args.workers),  # bounded heads, no proxy headers, no access log
        )
    return 0


@contextlib.contextmanager
def _processes(workers: int) -> Iterator[None]:
    """What N receiver processes on one port share, set in the environment they inherit: their number
    (each holds 1/N of the failure limit, receiver/ratelimit.py) and the folder where prometheus-client
    keeps every process's request series (receiver/metrics.py), emptied first and removed after."""
    os.environ["WEB_CONCURRENCY"] = str(workers)
    if workers <= 1:
        yield
        return
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="workhooks-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # a previous run's counts would be added to this one's
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


def _workers(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of processes, 1 or more")
    return int(text)


def cmd_worker(args: argparse.Namespace) -> int:
    """RQ's worker (processing, polls) in this thread; the delivery dispatcher on others (docs/delivery.md)."""
    from workers import dispatch
    from workhooks.core.logs import configure_logging
    from workhooks.core.runtime import settle_garbage_collector

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    common.load(None)
    connection = common.connect()
    settle_garbage_collector()
    if args.burst:
        for _ in range(BURST_ROUNDS):  # a dead letter's event is processing work again, and so on: bounded
            _run_rq(args, connection)
            if dispatch.drain(connection):
                _abandon("--burst")
            if not connection.llen(keys.QUEUE_KEY) and not connection.llen(keys.INBOX):
                break
        return 0
    started: list[tuple[Any, Any, Any]] = []
    try:
        _run_rq(args, connection, lambda: started.append(dispatch.start(connection)))
    finally:
        for thread, stop, dispatcher in started:
            stop.set()
            thread.join(timeout=dispatch.STOP_WAIT + STOP_TIMEOUT)
            if thread.is_alive() or dispatcher.abandoned():
                _abandon("a stop")
    return 0


def _abandon(why: str) -> None:
    """Attempts still out after their grace: exit without waiting for their threads; their leases run out
    and another worker sends them (the one repeat docs/delivery.md allows)."""
    structlog.get_logger("workhooks.worker").warning("worker_exiting_with_attempts_in_progress", on=why)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_rq(args: argparse.Namespace, connection: redis.Redis, checked_layout: Any = None) -> None:
    """RQ's worker until a signal (or --burst) stops it, restarted when it quits on an error or Redis goes."""
    from workers.worker import Worker, maintenance_interval, worker_ttl

    log = structlog.get_logger("workhooks.worker")
    delay = 1.0
    checked = False
    while True:  # RQ's worker quits when Redis vanishes mid-job; a worker process should not
        started = time.monotonic()
        try:
            if not checked:
                refuse_unreadable(connection)
                checked = True
                if checked_layout is not None:
                    checked_layout()  # the data is readable: deliveries may start
            worker = Worker(
                [keys.QUEUE],
                connection=connection,
                maintenance_interval=maintenance_interval(),
                worker_ttl=worker_ttl(maintenance_interval()),
                log_job_description=False,
            )
            worker.work(with_scheduler=True, logging_level=os.environ.get("RQ_LOG_LEVEL", "WARNING"), burst=args.burst)
            # work() also returns after quitting on an error; only a signal (or --burst) is a real stop.
            if args.burst or getattr(worker, "_shutdown_requested_date", True) is not None:
                return
            reason = "the RQ worker quit on an error (see above)"
        except (redis.ConnectionError, redis.TimeoutError) as error:
            reason = str(error)[:200]
        if time.monotonic() - started > HEALTHY_RUN_SECONDS:
            delay = 1.0
        structlog.contextvars.clear_contextvars()
        log.warning("worker_restarting", reason=reason, in_s=delay)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # RQ's own handler belonged to the old worker
        time.sleep(delay)
        delay = min(delay * 2, MAX_RECONNECT_DELAY)


def cmd_scheduler(args: argparse.Namespace) -> int:
    """Enqueue polls of the pull sources on their intervals (safe to run more than one)."""
    import threading

    from workers.scheduler import run
    from workhooks.core.logs import configure_logging

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    config = common.load(None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    connection = common.connect()
    refuse_unreadable(connection)
    run(connection, config, stop)
    return 0


def _receiver_url(port: int) -> str:
    host = os.environ.get("HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 (a listen-on-all address: ask the loopback)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class Supervisor:
    """Runs the Procfile (honcho) and stops what it started, on SIGTERM, SIGINT or SIGHUP alike.

    honcho and the embedded Redis run in sessions of their own, so a terminal's Ctrl-C reaches
    `up` alone and `up` decides the order: honcho stops the processes (SIGTERM, SIGKILL after its
    own 5 s), `up` ends anything still left of them, and the embedded Redis goes last, after it
    has written its AOF. Each child is also told to stop if `up` itself is killed (Linux).
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_requested: int | None = None
        self.started: list[int] = []  # every process below honcho, as last seen

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        first = self.stop_requested is None
        self.stop_requested = signum
        if self.process is not None and self.process.poll() is None and first:
            self.started = local.descendants(self.process.pid)
            print(f"workhooks: {signal.Signals(signum).name}: stopping", file=sys.stderr, flush=True)
            # honcho stops its processes on SIGINT and SIGTERM (not SIGHUP)
            self.process.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    def run(self, command: list[str], env: dict[str, str]) -> int:
        self.process = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=local.die_with_parent)
        deadline = None
        while True:
            try:
                return self.process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if self.stop_requested is not None and deadline is None:
                deadline = time.monotonic() + STOP_TIMEOUT
            if deadline is not None and time.monotonic() > deadline:
                print(f"workhooks: honcho did not stop within {STOP_TIMEOUT:.0f} s; killing it", file=sys.stderr)
                self.process.kill()
                return self.process.wait()
            if deadline is None:
                self.started = local.descendants(self.process.pid) or self.started

    def reap(self) -> None:
        """End whatever honcho left (a process that outlived it): SIGTERM, then SIGKILL, bounded."""
        left = [pid for pid in self.started if local.alive(pid)]
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
            deadline = time.monotonic() + LEFTOVER_TIMEOUT
            while time.monotonic() < deadline and (left := [pid for pid in left if local.alive(pid)]):
                time.sleep(0.05)
            if not left:
                return


def cmd_up(args: argparse.Namespace) -> int:
    """Everything in one terminal: embedded Redis (unless REDIS_URL is set) and the Procfile."""
    from workhooks.store import embedded

    supervisor = Supervisor()
    supervisor.install()
    config = common.load(None)
    other = local.running_up()
    if other is not None:
        print(f"workhooks: 'workhooks up' already runs in this folder (pid {other['pid']}); stop it first",
              file=sys.stderr)  # fmt: skip
        return 1
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if not colour_wanted(sys.stdout):
        env["NO_COLOR"] = env.get("NO_COLOR") or "1"
    server = None
    try:
        if not env.get("REDIS_URL"):
            try:
                server = embedded.start(embedded.DEFAULT_DIRECTORY, own_session=True, preexec_fn=local.die_with_parent)
            except embedded.EmbeddedRedisError as error:
                print(f"workhooks: {error}", file=sys.stderr)
                return 3
            if server.cleaned:
                print(f"workhooks: removed what a killed run left: {server.cleaned}")
            env["REDIS_URL"] = server.url
            print(f"workhooks: embedded Redis at {server.url} (data in {server.directory}); "
                  "set REDIS_URL to use your own")  # fmt: skip
            try:
                schema.migrate(redis.Redis.from_url(server.url), report=lambda line: print(f"workhooks: {line}"))
            except schema.SchemaError as error:
                print(f"workhooks: {error}", file=sys.stderr)
                return 2
        else:
            print("workhooks: Redis from REDIS_URL")
        receiver = _receiver_url(args.port)
        local.record(receiver, None if server is None else server.url)
        print(f"workhooks: config {config_path()}")
        print("\n".join(describe(config, receiver)), flush=True)
        if supervisor.stop_requested is not None:
            return 128 + supervisor.stop_requested
        command = [sys.executable, "-m", "honcho", "start", "-f", str(PROCFILE), "-d", str(Path.cwd()),
                   "-p", str(args.port)]  # fmt: skip
        if not colour_wanted(sys.stdout):
            command.insert(4, "--no-colour")
        returncode = supervisor.run(command, env)
        return returncode if supervisor.stop_requested is None else 128 + supervisor.stop_requested  # 130, 143, 129
    finally:
        supervisor.reap()
        if server is not None:
            server.stop()
        local.forget()


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the HTTP receiver (uvicorn)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", common.DEFAULT_PORT)))
    serve.add_argument(
        "--workers",
        type=_workers,
        default=os.environ.get("WEB_CONCURRENCY", "").strip() or "1",
        help="receiver processes on the port (default: $WEB_CONCURRENCY, else 1); one per core",
    )
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run an RQ worker (with the retry scheduler)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.set_defaults(func=cmd_worker)

    scheduler = commands.add_parser("scheduler", help="enqueue polls of the pull sources (WorkReduce, ...)")
    scheduler.set_defaults(func=cmd_scheduler)

    up = commands.add_parser(
        "up", aliases=["dev"], help="everything in one terminal: embedded Redis unless REDIS_URL is set, the Procfile"
    )
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", common.DEFAULT_PORT)))
    up.set_defaults(func=cmd_up)
