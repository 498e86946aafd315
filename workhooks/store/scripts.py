"""Commands on redis-py's own connections, without its per-command client machinery, for the hot paths.

redis-py's ``Redis.execute_command`` (a registered script's call included) costs ~85 µs of CPU per call
on this project's 2-core bench machine, ~38 µs of which is the connection writing the command and
reading its answer: the rest is the client's argument checks, observability hooks and response
callbacks, which a script's raw answer does not need. A worker makes several such calls per event
(reading and writing its state, taking and completing its deliveries), the receiver one per batch of
callbacks. Here a command is packed by hiredis (C) and sent on a connection from the client's own pool
(so TLS, unix sockets, Sentinel, health checks and the client's Retry behave as they do for redis-py's
commands; its observability hooks are not called), and the answer is what the connection parsed: an
error answer raises its ResponseError, and the connection is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def packed(commands: Sequence[Sequence[Any]]) -> bytes:
    """Commands in Redis's protocol, packed by hiredis rather than redis-py's Python packer."""
    return b"".join(hiredis.pack_command(tuple(command)) for command in commands)


def call(client: redis.Redis, *words: Any) -> Any:
    """One command's answer, as ``client.execute_command`` would give it before response callbacks. Not for a
    pipeline (the command would run now, not with it) or a single-connection client."""
    if isinstance(client, Pipeline) or client.connection is not None:
        raise TypeError("scripts.call needs a pooled redis.Redis client, not a pipeline or a single connection")
    data = [hiredis.pack_command(words)]
    pool = client.connection_pool
    connection = pool.get_connection()

    def attempt() -> Any:
        connection.send_packed_command(data)  # type: ignore[no-untyped-call]
        return connection.read_response()

    try:
        return connection.retry.call_with_retry(attempt, lambda error: connection.disconnect())  # type: ignore[no-untyped-call]
    except ResponseError:
        raise  # an answer: the connection read it whole
    except BaseException:
        connection.disconnect()  # type: ignore[no-untyped-call]  # an answer may be left unread: never reused half-read
        raise
    finally:
        pool.release(connection)


async def _exchange(connection: Any, data: bytes, count: int) -> list[Any]:
    """``data`` written, ``count`` answers read, retried on the connection's Retry; on any failure the
    connection is left disconnected (answers may be left unread on it: never reused half-read).

    The connection's socket timeout bounds the whole exchange once, rather than each answer's read under
    its own timeout and the write under ``asyncio.wait_for`` (a task per call on Python 3.11): that was
    half of the exchange's CPU. Each answer is still read by the connection's ``read_response``, so what
    a Sentinel-managed connection does on a demoted primary's READONLY, and the health-check clock, are
    redis-py's own.
    """

    async def attempt() -> list[Any]:
        if not connection.is_connected:
            await connection.connect()
        await connection.check_health()
        answers: list[Any] = []
        try:
            async with asyncio.timeout(connection.socket_timeout):
                writer = connection._writer  # what send_packed_command writes to, without its wait_for
                writer.write(data)
                await writer.drain()
                for _ in range(count):
                    try:
                        answer = await connection.read_response(timeout=math.inf)  # the deadline is ours
                    except ResponseError as error:
                        answer = error
                    if answer is None and _failed(connection):  # the socket's own timeout, answered as None
                        raise RedisConnectionError("Redis's connection failed while reading")
                    answers.append(answer)
        except TimeoutError:  # (each failure disconnects: ``failed`` below, before a retry or the last raise)
            raise RedisTimeoutError("Timeout talking to Redis") from None
        except (OSError, RuntimeError) as error:  # writing (uvloop: RuntimeError on a closed transport)
            raise RedisConnectionError(f"Error while writing to Redis: {error!r}") from None
        return answers

    async def failed(error: BaseException) -> None:
        await connection.disconnect(nowait=True)  # not waiting on a peer that may have stalled

    try:
        answers: list[Any] = await connection.retry.call_with_retry(attempt, failed)
    except BaseException:
        await connection.disconnect()
        raise
    return answers


def _failed(connection: Any) -> bool:
    """The connection's stream holds an error: what ``read_response(timeout=...)`` answers as None when the
    error is a TimeoutError (an OS-level ETIMEDOUT), where a None answer is otherwise a nil reply."""
    reader = connection._reader
    return reader is None or reader.exception() is not None


def _quiet(connection: Any) -> bool:
    """Nothing happened on a kept connection since its last answer: neither end closed it, it was not reset,
    nor marked for a reconnect (a maintenance notice). What else arrives unasked (a RESP3 push) the parser
    reads as a push before the next answer, as on redis-py's own path."""
    reader, writer = connection._reader, connection._writer
    if reader is None or writer is None:
        return True  # disconnected: _exchange connects it
    if getattr(connection, "should_reconnect", bool)():
        return False
    return not (writer.transport.is_closing() or reader.at_eof() or reader.exception() is not None)


def _still_primary(pool: Any, connection: Any) -> bool:
    """False for a Sentinel pool's connection to a primary it no longer knows as the primary (what its
    ``owns_connection`` means; redis-py's async one calls a method its base class lacks)."""
    if not getattr(pool, "is_master", False) or pool.master_address is None:
        return True
    return bool(pool.master_address == (connection.host, connection.port))


class Kept:
    """What a non-transactional redis-py pipeline does with ``data`` (``count`` packed commands: one write,
    then each answer, an error answer as its exception, retried on the client's Retry like a pipeline),
    without its per-pipeline machinery (it was the largest part of an acknowledgement's cost after the
    handler itself), on connections kept between calls instead of taken from the pool and given back each
    time: redis-py's async pool checks a connection out under a condition, a timeout and a zero-timeout
    read (is anything left unread on it?), then dispatches an event on its return, ~25 µs of CPU per round
    trip on the bench machine. A kept connection needs none of that: everything sent on it was read, or it
    was disconnected and given back; one the server closed while it was kept, or to a Sentinel primary that
    was replaced, is connected again (a Sentinel connection connects to the primary Sentinel names). At
    most ``most`` are kept (the rest go back to the pool). Not given back between calls, a kept connection
    misses what the pool does on a return: the re-authentication event for streaming credential providers
    (not used here). The client's pool still owns them all: closing the client closes them. One client's
    at a time: given another client, the connections kept for the one before are left to its pool (in use
    there, and closed with it), as an Ingest has one client for its life.
    """

    __slots__ = ("_idle", "_most", "_pool")

    def __init__(self, most: int = 4) -> None:
        self._idle: list[Any] = []
        self._pool: Any = None
        self._most = most

    async def round_trip(self, client: redis.asyncio.Redis, data: bytes, count: int) -> list[Any]:
        pool = client.connection_pool
        if pool is not self._pool:  # another client (tests, a reconnect): keep its connections instead
            self._pool, self._idle = pool, []
        connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            if not (_quiet(connection) and _still_primary(pool, connection)):
                # the server closed it meanwhile (a restart, its idle timeout, a proxy), or the primary changed:
                await connection.disconnect(nowait=True)  # _exchange connects it again (to the new primary)
            answers = await _exchange(connection, data, count)
        except BaseException:
            await pool.release(connection)
            raise
        if len(self._idle) < self._most and self._pool is pool:
            self._idle.append(connection)
        else:
            await pool.release(connection)
        return answers


class Script:
    """A Lua script called by its SHA (EVALSHA), loaded when the server does not know it: what
    ``redis.Redis.register_script`` gives, called through ``call``."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()  # the name Redis gives it

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = (), *, client: redis.Redis) -> Any:
        words = ("EVALSHA", self.sha, len(keys), *keys, *args)
        try:
            return call(client, *words)
        except NoScriptError:  # a new or flushed server
            client.script_load(self.text)
            return call(client, *words)
