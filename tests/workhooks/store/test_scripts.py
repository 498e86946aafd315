"""Scripts and commands sent without redis-py's client machinery answer as redis-py's own calls do."""

from __future__ import annotations

import asyncio
import errno
import time
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workhooks.store import scripts

ECHO = scripts.Script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")


def test_a_script_answers_what_redis_pys_registered_script_answers(rdb: redis.Redis) -> None:
    ours = ECHO(keys=["k"], args=["v", 41], client=rdb)
    theirs = rdb.register_script(ECHO.text)(keys=["k"], args=["v", 41])
    assert ours == theirs == [b"k", b"v", 42]
    assert ECHO.sha == rdb.register_script(ECHO.text).sha


def test_a_server_that_lost_the_script_is_given_it_again(rdb: redis.Redis) -> None:
    ECHO(keys=["k"], args=["v", 1], client=rdb)
    rdb.script_flush()
    assert ECHO(keys=["k"], args=["v", 1], client=rdb) == [b"k", b"v", 2]


def test_an_error_answer_raises_and_the_connection_serves_the_next_call(rdb: redis.Redis) -> None:
    failing = scripts.Script("return redis.error_reply('NOPE said the script')")
    with pytest.raises(ResponseError, match="NOPE said the script"):
        failing(client=rdb)
    assert scripts.call(rdb, "ECHO", "after") == b"after"


def test_floats_ints_and_bytes_are_sent_as_redis_py_sends_them(rdb: redis.Redis) -> None:
    scripts.call(rdb, "HSET", "h", "f", 0.1, "i", 7, "b", b"\x00\xff")
    assert rdb.hgetall("h") == {b"f": b"0.1", b"i": b"7", b"b": b"\x00\xff"}


def test_a_server_that_is_gone_raises_redis_pys_connection_error() -> None:
    client = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    with pytest.raises(RedisConnectionError):
        ECHO(keys=["k"], args=["v", 1], client=client)


def test_a_pipeline_or_a_single_connection_client_is_refused_rather_than_bypassed(redis_url: str) -> None:
    single = redis.Redis.from_url(redis_url, single_connection_client=True)
    try:
        for client in (single, single.pipeline()):
            with pytest.raises(TypeError, match="pooled"):
                ECHO(keys=["k"], args=["v", 1], client=client)
    finally:
        single.close()


def _pipeline_answers(redis_url: str, commands: list[tuple[object, ...]]) -> list[object]:
    client = redis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return list(pipe.execute(raise_on_error=False))
    finally:
        client.close()


MIXED: list[tuple[object, ...]] = [
    ("ECHO", "one"),
    ("EVAL", "return redis.error_reply('NOPE')", 0),
    ("EXISTS", "a"),
    ("GET", "a"),
]


def test_a_round_trip_answers_what_a_redis_py_pipeline_answers_and_keeps_its_connection(redis_url: str) -> None:
    async def main() -> tuple[list[object], list[object]]:
        client = redis.asyncio.Redis.from_url(redis_url)
        kept = scripts.Kept()
        try:
            first = await kept.round_trip(client, scripts.packed([*MIXED, ("CLIENT", "ID")]), len(MIXED) + 1)
            second = await kept.round_trip(client, scripts.packed([("CLIENT", "ID")]), 1)
            return first, second
        finally:
            await client.aclose()

    first, second = asyncio.run(main())
    ours, theirs = first[:-1], _pipeline_answers(redis_url, MIXED)
    assert [str(a) if isinstance(a, ResponseError) else a for a in ours] == [
        str(a) if isinstance(a, ResponseError) else a for a in theirs
    ]
    assert isinstance(ours[1], ResponseError)
    assert first[-1] == second[0]  # the same connection, kept after an error answer


def test_a_kept_connection_the_server_closed_is_reconnected_and_the_call_answered(redis_url: str) -> None:
    async def main() -> tuple[object, object, list[object]]:
        client = redis.asyncio.Redis.from_url(redis_url)
        kept = scripts.Kept()
        try:
            (before,) = await kept.round_trip(client, scripts.packed([("CLIENT", "ID")]), 1)
            killer = redis.Redis.from_url(redis_url)
            killer.client_kill_filter(_id=before)
            killer.close()
            await asyncio.sleep(0.1)  # idle meanwhile, as between callbacks: the loop sees the server's close
            (after,) = await kept.round_trip(client, scripts.packed([("CLIENT", "ID")]), 1)
            return before, after, await kept.round_trip(client, scripts.packed([("ECHO", "x")]), 1)
        finally:
            await client.aclose()

    before, after, echo = asyncio.run(main())
    assert before != after and echo == [b"x"]


def test_a_server_that_never_answers_times_out_and_its_connection_is_not_kept() -> None:
    async def main() -> tuple[type[BaseException], float, int]:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # reads nothing, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = redis.asyncio.Redis(host="127.0.0.1", port=port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0))
        kept = scripts.Kept()
        started = time.monotonic()
        try:
            await kept.round_trip(client, scripts.packed([("PING",)]), 1)
        except BaseException as error:
            failed = type(error)
        took = time.monotonic() - started
        idle = len(kept._idle)
        await client.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
        return failed, took, idle

    failed, took, idle = asyncio.run(main())
    assert issubclass(failed, RedisTimeoutError)
    assert 0.25 < took < 5
    assert idle == 0


def test_a_connection_the_os_times_out_mid_batch_raises_rather_than_answering_none(redis_url: str) -> None:
    """redis-py answers None for a read that raised TimeoutError when a timeout was passed: an OS-level
    ETIMEDOUT on the socket must not become a batch of None answers (the receiver would answer 500)."""

    async def main() -> tuple[type[BaseException] | None, int]:
        client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=10, retry=Retry(NoBackoff(), 0))
        kept = scripts.Kept()
        batch = scripts.packed([("BLPOP", "never-pushed", 0), ("ECHO", "after")])  # the first answer never comes
        trip = asyncio.create_task(kept.round_trip(client, batch, 2))
        watcher = redis.asyncio.Redis.from_url(redis_url)
        for _ in range(100):  # bounded: until Redis is blocked on the batch
            await asyncio.sleep(0.02)
            if b"cmd=blpop" in await watcher.execute_command("CLIENT", "LIST"):  # type: ignore[no-untyped-call]
                break
        await watcher.aclose()
        (connection,) = client.connection_pool._in_use_connections
        writer: Any = connection._writer
        writer.transport._fatal_error(TimeoutError(errno.ETIMEDOUT, "Connection timed out"))  # as the OS reports it
        failed: type[BaseException] | None = None
        try:
            await asyncio.wait_for(trip, 5)
        except BaseException as error:
            failed = type(error)
        idle = len(kept._idle)
        await client.aclose()
        return failed, idle

    failed, idle = asyncio.run(main())
    assert failed is not None and issubclass(failed, RedisConnectionError)
    assert idle == 0
