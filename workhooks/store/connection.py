"""REDIS_URL to a client, the same way in the receiver, the workers and the CLI.

`redis://`, `rediss://` (TLS) and `unix://` are read by redis-py itself. Redis Sentinel:

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?sentinel_password=...]

(`rediss+sentinel://` for TLS to the primary). The client asks the sentinels for the current
primary and follows a failover on its own (redis-py's Sentinel support).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SENTINEL_PORT = 26379
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}


class RedisURLError(ValueError):
    pass


def url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_URL


@dataclass(frozen=True, slots=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"db": self.db, "username": self.username, "password": self.password, **TIMEOUTS}
        return {**kwargs, "ssl": True} if self.ssl else kwargs

    def sentinel_kwargs(self) -> dict[str, Any]:
        return {"password": self.sentinel_password, **TIMEOUTS}


def _host_port(part: str) -> tuple[str, int]:
    if part.startswith("["):  # [::1]:26379
        host, _, rest = part[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
    if not host:
        raise RedisURLError(f"sentinel address without a host: {part!r}")
    try:
        return host, int(port) if port else SENTINEL_PORT
    except ValueError:
        raise RedisURLError(f"sentinel port is not a number: {part!r}") from None


def parse_sentinel(value: str) -> SentinelURL | None:
    """The Sentinel settings a `redis+sentinel://` URL names; None for any other URL."""
    scheme, _, rest = value.partition("://")
    if scheme not in SENTINEL_SCHEMES:
        return None
    parts = urlsplit(f"redis://{rest}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    path = [piece for piece in parts.path.split("/") if piece]
    if not hosts or not path or len(path) > 2:
        raise RedisURLError("Sentinel URL: redis+sentinel://host:port[,host:port...]/service[/db]")
    query = parse_qs(parts.query)
    try:
        db = int(path[1]) if len(path) == 2 else 0
    except ValueError:
        raise RedisURLError(f"Sentinel URL: database is not a number: {path[1]!r}") from None
    return SentinelURL(
        sentinels=tuple(_host_port(part) for part in hosts.split(",") if part),
        service=unquote(path[0]),
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password", [None])[0],
        ssl=scheme == "rediss+sentinel",
    )


def describe(value: str) -> str:
    """The URL with any password replaced, for logs and `workhooks check`."""
    scheme, _, rest = value.partition("://")
    userinfo, at, hosts = rest.partition("@")
    if not at:
        return value
    username = userinfo.partition(":")[0]
    return f"{scheme}://{username}:***@{hosts.split('?')[0]}"


def replicated(value: str) -> bool:
    """Behind Sentinel there is a replica to wait for before acknowledging."""
    return parse_sentinel(value) is not None


def connect(value: str) -> redis.Redis:
    """A synchronous client (workers, scheduler, CLI)."""
    sentinel = parse_sentinel(value)
    if sentinel is None:
        return redis.Redis.from_url(value)
    manager = redis.sentinel.Sentinel(sentinel.sentinels, sentinel_kwargs=sentinel.sentinel_kwargs())  # type: ignore[no-untyped-call]
    client: redis.Redis = manager.master_for(sentinel.service, **sentinel.client_kwargs())  # type: ignore[no-untyped-call]
    return client


def connect_async(value: str, max_connections: int) -> redis.asyncio.Redis:
    """The receiver's client: a bounded pool that waits for a free connection instead of failing under bursts."""
    sentinel = parse_sentinel(value)
    if sentinel is None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            value, max_connections=max_connections, timeout=5, **TIMEOUTS
        )
        return redis.asyncio.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
    manager = redis.asyncio.sentinel.Sentinel(sentinel.sentinels, sentinel_kwargs=sentinel.sentinel_kwargs())  # type: ignore[no-untyped-call]
    # Sentinel's pool opens a connection per concurrent request (bounded by the server's concurrency limit).
    client: redis.asyncio.Redis = manager.master_for(sentinel.service, **sentinel.client_kwargs())
    return client
