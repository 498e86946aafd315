"""`workhooks`: run the service and look after it."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TypeVar, get_args
from urllib.parse import urlsplit

import redis
import structlog

from receiver.config import (
    Config,
    EmailSink,
    LogSink,
    Match,
    SharedWorkforceSource,
    Sink,
    WebhookSink,
    WordySource,
    config_path,
    load_config,
)
from receiver.connection import RedisURLError, parse_sentinel
from receiver.connection import connect as connect_redis
from receiver.connection import describe as describe_redis_url
from receiver.connection import url as redis_url
from receiver.events import Event, Phase
from receiver.exceptions import ConfigError
from receiver.keys import QUEUE
from receiver.sources import PLATFORMS
from workers.eventlog import STATUSES
from workers.pollers import POLLERS

T = TypeVar("T")
DEFAULT_PORT = 8000
MAX_RECONNECT_DELAY = 5.0  # a worker waiting for Redis retries at least this often
HEALTHY_RUN_SECONDS = 60.0
EXIT_CODES = """exit codes: 0 done (events list: something found); 1 nothing found, refused or failed;
2 bad arguments or configuration; 3 Redis (or, for send, the receiver) unreachable"""


def _redis_url() -> str:
    """REDIS_URL, checked: a malformed one stops the command with the reason (exit 2)."""
    value = redis_url()
    try:
        parse_sentinel(value)
    except RedisURLError as error:
        print(f"workhooks: REDIS_URL: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return value


def _redis() -> redis.Redis:
    return connect_redis(_redis_url())


def _progress(items: Sequence[T], description: str) -> Iterable[T]:
    """A rich progress bar on a terminal for long runs; nothing extra in a pipe or a log."""
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)
    return track(items, description=description, console=console, disable=len(items) < 50 or not console.is_terminal)


def _load(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"workhooks: configuration error in {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _where(sink: Sink) -> str:
    """Where a sink delivers, without its secrets (Slack and Apprise URLs are credentials)."""
    if isinstance(sink, WebhookSink):
        return f"{sink.url}{'  (signed)' if sink.secret else ''}"
    if isinstance(sink, LogSink):
        return str(sink.path or "stdout")
    url = urlsplit(sink.url.get_secret_value())
    if isinstance(sink, EmailSink):
        return f"{url.scheme}://{url.hostname}:{url.port or ''} -> {', '.join(sink.to)}"
    return f"{url.scheme}://{url.hostname or ''}/… (URL hidden)"


def reach(config: Config) -> list[str]:
    """Which sinks each event type of each source would reach; routes with other conditions say so."""
    lines = ["event types reach:"]
    for name, source in config.sources.items():
        module = PLATFORMS.get(source.platform) or POLLERS[source.platform]
        for kind in module.EVENT_TYPES:
            sample = Event("evt_sample", name, kind, "", "")
            reached: list[str] = []
            for route in config.routes:
                if not _matches_source_and_type(route.match, sample):
                    continue
                extra = route.match.model_dump(exclude_none=True, include={"subject", "phase"})
                extra |= {f"data.{key}": value for key, value in route.match.data.items()}
                condition = " if " + " ".join(f"{k}={','.join(map(str, v))}" for k, v in extra.items()) if extra else ""
                reached += [f"{sink}{condition}" for sink in route.to if sink not in reached]
                if not route.continue_ and not extra:
                    break
            lines.append(f"  {name:<20} {kind:<42} -> {', '.join(reached) or '(nothing)'}")
    return lines


def _matches_source_and_type(match: Match, event: Event) -> bool:
    return (match.source is None or event.source in match.source) and (
        match.type is None or any(fnmatchcase(event.type, pattern) for pattern in match.type)
    )


def describe(config: Config, base_url: str = "") -> list[str]:
    lines = ["sources:"]
    for name, source in config.sources.items():
        if isinstance(source, WordySource):
            lines.append(f"  {name:<20} wordy            POST {base_url}/hooks/{name}/<token>")
        elif isinstance(source, SharedWorkforceSource):
            lines.append(f"  {name:<20} sharedworkforce  POST {base_url}/hooks/{name}   (X-API-Key or api_key)")
        else:
            lines.append(f"  {name:<20} {source.platform:<16} polled every {source.poll_interval} s")
    if config.admin.token is not None:
        lines.append(f"console: {base_url}/admin/  (admin.token)")
    lines.append("sinks:")
    for name, sink in config.sinks.items():
        lines.append(f"  {name:<20} {sink.type:<16} {_where(sink)}")
    lines.append("routes:")
    for index, route in enumerate(config.routes, 1):
        conditions = [
            f"{key}={','.join(map(str, value))}"
            for key, value in route.match.model_dump(exclude_none=True, exclude={"data"}).items()
        ]
        conditions += [f"data.{key}={','.join(map(str, value))}" for key, value in route.match.data.items()]
        stop = "  (continue: false)" if not route.continue_ else ""
        lines.append(f"  {index}. {' '.join(conditions) or '(every event)'} -> {', '.join(route.to)}{stop}")
    return lines + reach(config)


def cmd_check(args: argparse.Namespace) -> int:
    path = args.path or str(config_path())
    config = _load(path)
    print(f"{path}: OK")
    print(f"redis: {describe_redis_url(_redis_url())}")
    print("\n".join(describe(config)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    _load(None)  # fail fast, with the key path, before uvicorn starts
    _redis_url()
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
    from receiver.logs import configure_logging
    from receiver.runtime import settle_garbage_collector
    from workers.worker import Worker, maintenance_interval, worker_ttl

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    _load(None)
    log = structlog.get_logger("workhooks.worker")
    connection = _redis()
    settle_garbage_collector()
    delay = 1.0
    while True:  # RQ's worker quits when Redis vanishes mid-job; a worker process should not
        started = time.monotonic()
        try:
            worker = Worker(
                [QUEUE],
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

    from receiver.logs import configure_logging
    from workers.scheduler import run

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    config = _load(None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(_redis(), config, stop)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Everything in one terminal: embedded Redis (unless REDIS_URL is set) and the Procfile."""
    from workhooks import embedded

    config = _load(None)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    server = None
    if not env.get("REDIS_URL"):
        server = embedded.start(Path("var") / "redis")
        env["REDIS_URL"] = server.url
        print(f"workhooks: embedded Redis at {server.url} (data in {server.directory}); set REDIS_URL to use your own")
    else:
        print("workhooks: Redis from REDIS_URL")
    print(f"workhooks: config {config_path()}")
    print("\n".join(describe(config, f"http://127.0.0.1:{args.port}")))
    procfile = Path(__file__).resolve().parent.parent / "Procfile"
    command = [
        sys.executable,
        "-m",
        "honcho",
        "start",
        "-f",
        str(procfile),
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


def cmd_quarantine(args: argparse.Namespace) -> int:
    from receiver import quarantine
    from receiver.ingest import Ingest

    connection = _redis()
    if args.action == "list":
        items = quarantine.list_items(connection)
        for item in items:
            print(f"{item.id}  {item.received_at}  {item.source:<16} {len(item.body):>7} B  {item.reason}")
        print(f"{len(items)} quarantined")
        return 0
    if args.action == "show":
        shown = quarantine.get(connection, args.id)
        if shown is None:
            print(f"workhooks: no quarantined body {args.id}", file=sys.stderr)
            return 1
        for label in ("id", "source", "received_at", "content_type", "reason"):
            print(f"{label}: {getattr(shown, label)}")
        print()
        print(shown.body.decode("utf-8", "replace"))
        return 0
    config = _load(None)
    ingest, failures = Ingest(), 0
    listed = quarantine.list_items(connection, limit=10_000) if args.id == "all" else []
    targets = [entry.id for entry in listed] if args.id == "all" else [args.id]
    for item_id in _progress(targets, "replaying quarantined bodies"):
        ok, what = quarantine.replay(connection, config, item_id, ingest)
        print(f"{item_id}: {what}")
        failures += not ok
    return 1 if failures else 0


def parse_since(value: str) -> float:
    """'90s', '30m', '6h', '2d' ago, or an ISO 8601 time, as a Unix timestamp."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return time.time() - int(value[:-1]) * units[value[-1]]
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: use 30m, 6h, 2d or an ISO 8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def cmd_deliveries(args: argparse.Namespace) -> int:
    from workers import delivery

    connection = _redis()
    items = delivery.list_deliveries(connection, args.failed, args.sink, args.since or 0, args.limit)
    for item in items:
        error = f"  {item.last_status_code or ''} {item.last_error}".rstrip() if item.last_error else ""
        print(f"{item.id}  {item.status:<9} {item.attempts:>2} attempts  {item.updated_at}{error}")
    print(f"{len(items)} {'dead' if args.failed else ''} deliveries".replace("  ", " "))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from workers import delivery

    connection = _redis()
    if args.delivery_id:
        outcome = delivery.replay(connection, args.delivery_id)
        print(f"{args.delivery_id}: {outcome}")
        return 0 if outcome == "queued" else 1
    if not args.failed:
        print("workhooks: name a DELIVERY_ID, or --failed", file=sys.stderr)
        return 2
    items = delivery.list_deliveries(connection, True, args.sink, args.since or 0, limit=1_000_000)
    queued = 0
    for item in _progress(items, "replaying dead deliveries"):
        queued += delivery.replay(connection, item.id) == "queued"
    print(f"{queued} dead deliveries queued again")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from receiver import keys
    from workers import delivery, eventlog, state

    connection = _redis()
    if args.action == "list":
        filters = eventlog.Filters(args.source, args.type, args.subject, args.phase, args.since or 0.0, args.status)
        found, _ = eventlog.find(connection, filters, _load(None).sinks, limit=args.limit)
        for item in found:
            event = item.event
            sinks = " ".join(f"{sink}:{status}" for sink, status in item.deliveries.items())
            print(f"{eventlog.age(item.received_at):>4} ago  {event.id}  {event.source:<14} {event.type:<42} "
                  f"{event.subject:<16} {event.phase or '-':<16} {item.status:<9} {sinks}".rstrip())  # fmt: skip
        print(f"{len(found)} event{'s' if len(found) != 1 else ''}", file=sys.stderr)
        return 0 if found else 1
    if not args.event_id:
        print("workhooks: events show needs an event id (see 'workhooks events list')", file=sys.stderr)
        return 2
    raw = connection.get(keys.event(args.event_id))
    if raw is None:
        print(f"workhooks: no event {args.event_id} (unknown or expired)", file=sys.stderr)
        return 1
    event = Event.from_json(raw)
    print(json.dumps(event.to_cloudevent(), indent=2, ensure_ascii=False))
    current = state.load(connection, event.source, event.subject)
    if current is not None:
        shown = {key: value for key, value in current.items() if key != "events"}
        print(f"\nstate of {event.subject}:\n" + json.dumps(shown, indent=2, ensure_ascii=False))
    opened = [delivery.get(connection, delivery.delivery_id(event.id, name)) for name in _load(None).sinks]
    print("\ndeliveries:")
    for opening in filter(None, opened):
        print(f"  {opening.sink:<20} {opening.status:<9} {opening.attempts} attempts  {opening.last_error}".rstrip())
    print("attempts:")
    for attempt in delivery.attempts(connection, event.id):
        detail = f"{attempt.get('status_code') or ''} {attempt.get('error') or ''}".strip()
        print(
            f"  {attempt['at']}  {attempt['sink']:<20} #{attempt['attempt']} {attempt['outcome']:<9} "
            f"{attempt['duration_ms']:>8} ms  {detail}".rstrip()
        )
    return 0


def cmd_spool(args: argparse.Namespace) -> int:
    """Drain a spool folder into Redis (one a receiver left behind: a dead host's disk, a restored volume)."""
    from receiver.ingest import Ingest
    from receiver.spool import Spool, read

    directory = args.directory or _load(None).receiver.spool_dir
    spool = Spool(directory)
    if args.action == "depth":
        print(f"{spool.depth()} callbacks waiting in {directory}")
        return 0
    connection, ingest = _redis(), Ingest()
    connection.ping()
    moved = duplicates = 0
    with spool.claim() as paths:  # only files no live receiver holds
        records = [(path, item) for path in paths for item in read(path)]
        for _, item in _progress(records, f"draining {directory}"):
            created = ingest.submit_sync(connection, item)
            moved, duplicates = moved + created, duplicates + (not created)
        for path in paths:
            path.unlink()
    spool.close()
    print(f"{moved} callbacks queued, {duplicates} already in Redis, from {directory}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Queue, workers, rates and failures, read from Redis."""
    from receiver import keys, metrics
    from workers import delivery

    config = _load(None)
    connection = _redis()
    now = time.time()
    with connection.pipeline(transaction=False) as pipe:
        metrics.ask_backlog(pipe)
        pipe.scard("rq:workers")
        pipe.zcount(keys.EVENTS_INDEX, now - 300, "+inf")
        pipe.zcount(keys.EVENTS_INDEX, now - 3600, "+inf")
        pipe.zcount(delivery.DEAD_INDEX, now - 3600, "+inf")
        pipe.zcard(delivery.DEAD_INDEX)
        pipe.zcard(keys.QUARANTINE_INDEX)
        pipe.hgetall(metrics.WORKER_COUNTERS)
        for name in config.sources:
            pipe.hgetall(keys.poll_status(name))
        depth, head, waiting, first, workers, last5, last60, dead_hour, dead, quarantined, counters, *polls = (
            pipe.execute()
        )
    with connection.pipeline(transaction=False) as pipe:
        metrics.ask_heads(pipe, head, first)
        oldest = metrics.oldest_age(*pipe.execute())
    print(f"queue        {depth + waiting} waiting" + (f", oldest {oldest:.0f} s" if oldest is not None else ""))
    print(f"workers      {workers}")
    print(f"events       {last5} in the last 5 min ({last5 / 300:.1f}/s), {last60} in the last hour")
    print(f"dead letters {dead} ({dead_hour} in the last hour); quarantined {quarantined}")
    totals: dict[str, dict[str, int]] = {}
    for key, value in counters.items():
        name, *labels = key.decode().split(metrics.SEPARATOR)
        if name == "workhooks_deliveries":
            totals.setdefault(labels[0], {})[labels[1]] = int(float(value))
    for sink in config.sinks:
        counts = totals.get(sink, {})
        shown = ", ".join(f"{outcome} {counts.get(outcome, 0)}" for outcome in ("delivered", "failed", "dead"))
        print(f"sink         {sink:<20} {shown}")
    for name, status in zip(config.sources, polls, strict=True):
        if status:
            age = metrics.seconds_since(status.get(b"last_ok_at"))
            error = status.get(b"last_error", b"").decode()
            ok = f"last ok {age:.0f} s ago" if age is not None else "never polled successfully"
            print(f"poll         {name:<20} {ok}" + (f"; last error: {error}" if error else ""))
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Post a sample (or a file) to a running receiver as the source's platform would."""
    import httpx

    from workhooks import samples

    config = _load(None)
    source = config.sources.get(args.source)
    if source is None:
        print(f"workhooks: no source {args.source!r} (sources: {', '.join(config.sources)})", file=sys.stderr)
        return 2
    try:
        path, headers, shown = samples.request(args.source, source)
        if args.file:
            content_type = args.content_type or (
                "application/xml" if args.file.suffix == ".xml" else "application/json"
            )
            payload = args.file.read_bytes()
        else:
            kind = args.sample or samples.SAMPLES[source.platform][0]
            content_type, payload = samples.body(source.platform, kind, args.id)
    except (ValueError, OSError) as error:
        print(f"workhooks: {error}", file=sys.stderr)
        return 2
    try:
        response = httpx.post(args.url.rstrip("/") + path, content=payload,
                              headers={"content-type": content_type, **headers}, timeout=10)  # fmt: skip
    except httpx.HTTPError as error:
        print(
            f"workhooks: {args.url} did not answer ({type(error).__name__}): is the receiver running?", file=sys.stderr
        )
        return 3
    print(f"POST {shown} ({content_type}, {len(payload)} bytes) -> {response.status_code}")
    print(response.text)
    return 0 if response.is_success else 1


def cmd_route(args: argparse.Namespace) -> int:
    from receiver.config import HUMAN_SINK_TYPES
    from workers import messages, router
    from workers.exceptions import DeliveryError

    config = _load(None)
    try:
        event = Event.from_json(Path(args.event).read_bytes())
    except (OSError, ValueError, KeyError, AttributeError) as error:
        print(f"workhooks: {args.event}: not a CloudEvent JSON file ({error})", file=sys.stderr)
        return 2
    print(f"event {event.type} {event.subject} from {event.source} (phase {event.phase})")
    print("\n".join(router.explain(config, event)))
    targets = router.plan(config, event)
    print(f"sinks: {', '.join(target.sink for target in targets) or '(none)'}")
    for target in targets:
        if config.sinks[target.sink].type in HUMAN_SINK_TYPES:
            try:
                print(f"  {target.sink}: {messages.render(event, target.template).title}")
            except DeliveryError as error:
                print(f"  {target.sink}: cannot render: {error}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workhooks",
        description="Callback receiver and event router for work platforms.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="validate workhooks.yaml and show what it configures")
    check.add_argument(
        "path", nargs="?", help="config file (default: $WORKHOOKS_CONFIG, ./workhooks.yaml, the example)"
    )
    check.set_defaults(func=cmd_check)

    serve = commands.add_parser("serve", help="run the HTTP receiver (uvicorn)")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    serve.set_defaults(func=cmd_serve)

    worker = commands.add_parser("worker", help="run an RQ worker (with the retry scheduler)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.set_defaults(func=cmd_worker)

    scheduler = commands.add_parser("scheduler", help="enqueue polls of the pull sources (WorkReduce, ...)")
    scheduler.set_defaults(func=cmd_scheduler)

    up = commands.add_parser(
        "up", aliases=["dev"], help="everything in one terminal: embedded Redis unless REDIS_URL is set, the Procfile"
    )
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    up.set_defaults(func=cmd_up)

    deliveries = commands.add_parser("deliveries", help="deliveries (event x sink) and their status")
    deliveries.add_argument("--failed", action="store_true", help="only dead letters (out of attempts, or refused)")
    deliveries.add_argument("--sink", help="only this sink")
    deliveries.add_argument("--since", type=parse_since, help="30m, 6h, 2d or an ISO time")
    deliveries.add_argument("--limit", type=int, default=100)
    deliveries.set_defaults(func=cmd_deliveries)

    replay = commands.add_parser("replay", help="send dead deliveries again")
    replay.add_argument("delivery_id", nargs="?", help="an id from 'workhooks deliveries'")
    replay.add_argument("--failed", action="store_true", help="every dead delivery (filtered by --sink/--since)")
    replay.add_argument("--sink")
    replay.add_argument("--since", type=parse_since)
    replay.set_defaults(func=cmd_replay)

    events = commands.add_parser(
        "events", help="list events (newest first) or show one", description="exit 1 when no event matches"
    )
    events.add_argument("action", choices=["list", "show"])
    events.add_argument("event_id", nargs="?", help="show: the event's id")
    events.add_argument("--source", help="a source name from workhooks.yaml")
    events.add_argument("--type", help="an event type or a glob: wordy.job.*")
    events.add_argument("--subject", help="job/123, task/501234, order/77, ...")
    events.add_argument("--phase", choices=list(get_args(Phase)))
    events.add_argument("--since", type=parse_since, help="30m, 6h, 2d or an ISO time")
    events.add_argument("--status", choices=STATUSES, help="what became of it")
    events.add_argument("--limit", type=int, default=50)
    events.set_defaults(func=cmd_events)

    spool = commands.add_parser("spool", help="callbacks a receiver spooled while Redis was away: depth, or drain")
    spool.add_argument("action", choices=["depth", "drain"])
    spool.add_argument("directory", nargs="?", type=Path, help="default: receiver.spool_dir from workhooks.yaml")
    spool.set_defaults(func=cmd_spool)

    stats = commands.add_parser("stats", help="queue depth and age, workers, rates, failures per sink, polls")
    stats.set_defaults(func=cmd_stats)

    send = commands.add_parser(
        "send",
        help="post a sample callback (or a file) to a running receiver, authenticated as configured",
        description="exit 0: accepted (2xx); 1: refused; 2: bad arguments; 3: no receiver answered",
    )
    send.add_argument("source", help="a Wordy or Shared Workforce source from workhooks.yaml")
    send.add_argument("file", nargs="?", type=Path, help="a body to send instead of a sample")
    send.add_argument("--sample", help="wordy: status (default) or message; sharedworkforce: task")
    send.add_argument("--id", type=int, help="the job/task id in the sample (default: random)")
    send.add_argument("--content-type", help="for a file (default: by its extension, JSON or XML)")
    send.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', DEFAULT_PORT)}")
    send.set_defaults(func=cmd_send)

    route = commands.add_parser("route", help="explain which routes and sinks one sample event reaches")
    route.add_argument("--event", required=True, help="a CloudEvent JSON file")
    route.set_defaults(func=cmd_route)

    quarantined = commands.add_parser("quarantine", help="bodies that authenticated but could not be parsed")
    quarantined.add_argument("action", choices=["list", "show", "replay"])
    quarantined.add_argument("id", nargs="?", default="all", help="an id from 'list' (replay: default all)")
    quarantined.set_defaults(func=cmd_quarantine)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        where = describe_redis_url(redis_url())
        print(f"workhooks: cannot reach Redis at {where} ({type(error).__name__}); set REDIS_URL", file=sys.stderr)
        return 3
    return result


if __name__ == "__main__":
    raise SystemExit(main())
