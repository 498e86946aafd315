"""`workhooks`: run the service and look after it."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import redis

from receiver.config import Config, SharedWorkforceSource, WebhookSink, WordySource, config_path, load_config
from receiver.exceptions import ConfigError
from receiver.keys import DELIVERIES_QUEUE, EVENTS_QUEUE

DEFAULT_PORT = 8000
WORKER_MAINTENANCE_INTERVAL = 60


def _redis_url() -> str:
    from receiver.app import redis_url

    return redis_url()


def _load(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"workhooks: configuration error in {error}", file=sys.stderr)
        raise SystemExit(2) from None


def describe(config: Config, base_url: str = "") -> list[str]:
    lines = ["sources:"]
    for name, source in config.sources.items():
        if isinstance(source, WordySource):
            lines.append(f"  {name:<20} wordy            POST {base_url}/hooks/{name}/<token>")
        elif isinstance(source, SharedWorkforceSource):
            lines.append(f"  {name:<20} sharedworkforce  POST {base_url}/hooks/{name}   (X-API-Key or api_key)")
    lines.append("sinks:")
    for name, sink in config.sinks.items():
        if isinstance(sink, WebhookSink):
            where = f"{sink.url}{'  (signed)' if sink.secret else ''}"
        else:
            where = str(sink.path or "stdout")
        lines.append(f"  {name:<20} {sink.type:<16} {where}")
    lines.append("routes:")
    for index, route in enumerate(config.routes, 1):
        conditions = [
            f"{key}={','.join(map(str, value))}"
            for key, value in route.match.model_dump(exclude_none=True, exclude={"data"}).items()
        ]
        conditions += [f"data.{key}={','.join(map(str, value))}" for key, value in route.match.data.items()]
        lines.append(f"  {index}. {' '.join(conditions) or '(every event)'} -> {', '.join(route.to)}")
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    path = args.path or str(config_path())
    config = _load(path)
    print(f"{path}: OK")
    print("\n".join(describe(config)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    _load(None)  # fail fast, with the key path, before uvicorn starts
    uvicorn.run(
        "receiver.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,  # our RequestLog prints route templates; paths hold capability tokens
        log_level="warning",
        timeout_graceful_shutdown=20,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from rq.worker import SimpleWorker

    from receiver.logs import configure_logging

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    _load(None)
    connection = redis.Redis.from_url(_redis_url())
    worker = SimpleWorker(
        [EVENTS_QUEUE, DELIVERIES_QUEUE],
        connection=connection,
        maintenance_interval=WORKER_MAINTENANCE_INTERVAL,
        log_job_description=False,
    )
    worker.work(with_scheduler=True, logging_level=os.environ.get("RQ_LOG_LEVEL", "WARNING"), burst=args.burst)
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
    from receiver.events import Event
    from receiver.exceptions import CallbackError
    from receiver.ingest import Ingest
    from receiver.sources import parser

    connection = redis.Redis.from_url(_redis_url())
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
    for item_id in targets:
        found = quarantine.get(connection, item_id)
        source = config.sources.get(found.source) if found else None
        if found is None or source is None:
            print(f"{item_id}: {'not found' if found is None else 'its source is no longer configured'}")
            failures += 1
            continue
        try:
            callback = parser(source.platform)(found.body, found.content_type)
        except CallbackError as error:
            print(f"{item_id}: still cannot be parsed: {error}")
            failures += 1
            continue
        event = Event.from_callback(found.source, callback)
        created = ingest.submit_sync(connection, event, found.content_type, found.body, source.secrets())
        quarantine.remove(connection, item_id)
        print(f"{item_id}: {'queued as' if created else 'already accepted as'} {event.id}")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workhooks", description="Callback receiver and event router for work platforms."
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

    up = commands.add_parser("up", help="run everything: embedded Redis unless REDIS_URL is set, then the Procfile")
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    up.set_defaults(func=cmd_up)

    quarantined = commands.add_parser("quarantine", help="bodies that authenticated but could not be parsed")
    quarantined.add_argument("action", choices=["list", "show", "replay"])
    quarantined.add_argument("id", nargs="?", default="all", help="an id from 'list' (replay: default all)")
    quarantined.set_defaults(func=cmd_quarantine)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
