"""What every command shares: the config, the Redis connection, progress bars, time arguments, --json."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis

from workhooks.cli import local
from workhooks.config.loading import load_config
from workhooks.config.schema import Config
from workhooks.core.exceptions import ConfigError
from workhooks.core.logs import colour_wanted
from workhooks.store.connection import RedisURLError, parse_sentinel
from workhooks.store.connection import connect as connect_redis

T = TypeVar("T")
DEFAULT_PORT = 8000
used_redis_url: str | None = None  # the one this command connected to, for the "cannot reach" message


def redis_url_or_none() -> str | None:
    """REDIS_URL if set (checked), else this folder's embedded Redis if it runs, else None."""
    value = os.environ.get("REDIS_URL")
    if value:
        try:
            parse_sentinel(value)
        except RedisURLError as error:
            print(f"workhooks: REDIS_URL: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        return value
    return local.redis_url()


def checked_redis_url() -> str:
    """The Redis this command uses. Never a guess: with no REDIS_URL and no embedded Redis, exit 3."""
    global used_redis_url
    value = redis_url_or_none()
    if value is None:
        print(f"workhooks: no Redis: REDIS_URL is unset and no embedded Redis runs in {local.where()} "
              "(start it with 'make run', or set REDIS_URL)", file=sys.stderr)  # fmt: skip
        raise SystemExit(3)
    if not os.environ.get("REDIS_URL"):
        print(f"workhooks: using the embedded Redis of this folder ({value})", file=sys.stderr)
    used_redis_url = value
    return value


def connect() -> redis.Redis:
    return connect_redis(checked_redis_url())


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout, for scripts")


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def progress(items: Sequence[T], description: str) -> Iterable[T]:
    """A rich progress bar on a terminal for long runs; nothing extra in a pipe or a log."""
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True, no_color=not colour_wanted(sys.stderr))
    return track(items, description=description, console=console, disable=len(items) < 50 or not console.is_terminal)


def load(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"workhooks: configuration error in {error}", file=sys.stderr)
        raise SystemExit(2) from None


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
