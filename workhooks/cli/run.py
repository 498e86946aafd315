"""The long-running processes: `serve` (receiver), `worker`, `scheduler`, and `up`, all of them at once."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
import structlog

from workhooks.cli import common
from workhooks.cli.check import describe
from workhooks.cli.migrate import refuse_unreadable
from workhooks.config.loading import config_path
from workhooks.store import keys, schema

MAX_RECONNECT_DELAY = 5.0  # a worker waiting for Redis retries at least this often
HEALTHY_RUN_SECONDS = 60.0
PROCFILE = Path(__file__).resolve().parent.parent.parent / "Procfile"


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    common.load(None)  # fail fast, with the key path, before uvicorn starts
    with contextlib.suppress(redis.RedisError):  # Redis away: the receiver starts anyway and spools
        refuse_unreadable(common.connect())
    uvicorn.run(
        "workhooks.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,  # our RequestLog prints route templates; paths hold capability tokens
        log_level="warning",
        timeout_graceful_shutdown=20,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.worker import Worker, maintenance_interval, worker_ttl
    from workhooks.core.logs import configure_logging
    from workhooks.core.runtime import settle_garbage_collector

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    common.load(None)
    log = structlog.get_logger("workhooks.worker")
    connection = common.connect()
    settle_garbage_collector()
    delay = 1.0
    checked = False
    while True:  # RQ's worker quits when Redis vanishes mid-job; a worker process should not
        started = time.monotonic()
        try:
            if not checked:
                refuse_unreadable(connection)
                checked = True
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
                return 0
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


def cmd_up(args: argparse.Namespace) -> int:
    """Everything in one terminal: embedded Redis (unless REDIS_URL is set) and the Procfile."""
    from workhooks.store import embedded

    config = common.load(None)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    server = None
    if not env.get("REDIS_URL"):
        server = embedded.start(Path("var") / "redis")
        env["REDIS_URL"] = server.url
        print(f"workhooks: embedded Redis at {server.url} (data in {server.directory}); set REDIS_URL to use your own")
        try:
            schema.migrate(redis.Redis.from_url(server.url), report=lambda line: print(f"workhooks: {line}"))
        except schema.SchemaError as error:
            server.stop()
            print(f"workhooks: {error}", file=sys.stderr)
            return 2
    else:
        print("workhooks: Redis from REDIS_URL")
    print(f"workhooks: config {config_path()}")
    print("\n".join(describe(config, f"http://127.0.0.1:{args.port}")))
    command = [
        sys.executable,
        "-m",
        "honcho",
        "start",
        "-f",
        str(PROCFILE),
        "-d",
        str(Path.cwd()),
        "-p",
        str(args.port),
    ]
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()
    finally:
        if server is not None:
            server.stop()


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the HTTP receiver (uvicorn)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", common.DEFAULT_PORT)))
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
