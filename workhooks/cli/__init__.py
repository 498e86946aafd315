"""`workhooks`: run the service and look after it. One small module per command (or family of them)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import redis

from workhooks.cli import (
    check,
    common,
    deliveries,
    events,
    migrate,
    quarantine,
    route,
    run,
    send,
    sinks,
    spool,
    stats,
    work,
)
from workhooks.store.connection import describe as describe_redis_url

EXIT_CODES = """exit codes: 0 done (events list: something found); 1 nothing found, refused or failed;
2 bad arguments or configuration; 3 Redis (or, for send, the receiver) unreachable, or none set
and none running in this folder. With no REDIS_URL, commands use the embedded Redis that
`workhooks up` runs in ./var/redis, and say so on stderr."""
COMMANDS = (check, run, deliveries, events, work, spool, stats, sinks, send, route, quarantine, migrate)
EXIT_BROKEN_PIPE = 141  # what a shell reports for a writer killed by SIGPIPE: `workhooks events list | head`


def _version() -> str:
    try:
        return version("workhooks")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workhooks",
        description="Callback receiver and event router for work platforms.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"workhooks {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    common.used_redis_url = None
    try:
        result: int = args.func(args)
        sys.stdout.flush()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        where = describe_redis_url(common.used_redis_url or os.environ.get("REDIS_URL", "(none)"))
        print(f"workhooks: cannot reach Redis at {where} ({type(error).__name__}); set REDIS_URL", file=sys.stderr)
        return 3
    except BrokenPipeError:  # the reader went away (head, less): end quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's last flush does not complain
        return EXIT_BROKEN_PIPE
    return result


if __name__ == "__main__":
    raise SystemExit(main())
