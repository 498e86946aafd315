"""What every command shares: the config, the Redis connection, progress bars, time arguments."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import redis

from workhooks.config.loading import load_config
from workhooks.config.schema import Config
from workhooks.core.exceptions import ConfigError
from workhooks.store.connection import RedisURLError, parse_sentinel
from workhooks.store.connection import connect as connect_redis
from workhooks.store.connection import url as redis_url

T = TypeVar("T")
DEFAULT_PORT = 8000


def checked_redis_url() -> str:
    """REDIS_URL, checked: a malformed one stops the command with the reason (exit 2)."""
    value = redis_url()
    try:
        parse_sentinel(value)
    except RedisURLError as error:
        print(f"workhooks: REDIS_URL: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return value


def connect() -> redis.Redis:
    return connect_redis(checked_redis_url())


def progress(items: Sequence[T], description: str) -> Iterable[T]:
    """A rich progress bar on a terminal for long runs; nothing extra in a pipe or a log."""
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)
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
