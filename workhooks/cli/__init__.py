"""`workhooks`: run the service and look after it. One small module per command (or family of them)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import redis

from workhooks.cli import check, deliveries, events, migrate, quarantine, route, run, send, spool, stats
from workhooks.store.connection import describe as describe_redis_url
from workhooks.store.connection import url as redis_url

EXIT_CODES = """exit codes: 0 done (events list: something found); 1 nothing found, refused or failed;
2 bad arguments or configuration; 3 Redis (or, for send, the receiver) unreachable"""
COMMANDS = (check, run, deliveries, events, spool, stats, send, route, quarantine, migrate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workhooks",
        description="Callback receiver and event router for work platforms.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(commands)
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
