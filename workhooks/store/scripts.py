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

import hashlib
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError


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


async def round_trip(client: redis.asyncio.Redis, data: bytes, count: int) -> list[Any]:
    """What a non-transactional redis-py pipeline does with ``data`` (``count`` packed commands: one write,
    then each answer, an error answer as its exception, retried on the client's Retry like a pipeline),
    without its per-pipeline machinery: it was the largest part of an acknowledgement's cost after the
    handler itself."""
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]

    async def attempt() -> list[Any]:
        await connection.send_packed_command(data)
        answers: list[Any] = []
        for _ in range(count):
            try:
                answers.append(await connection.read_response())
            except ResponseError as error:
                answers.append(error)
        return answers

    async def failed(error: BaseException) -> None:
        await connection.disconnect()

    try:
        answers: list[Any] = await connection.retry.call_with_retry(attempt, failed)
    except BaseException:
        await connection.disconnect()  # answers may be left unread on it: never reused half-read
        raise
    finally:
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
