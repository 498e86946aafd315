"""Ingest: callbacks that arrive together share one pipeline, and each still gets its own answer."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import keys
from workhooks.store.ingest import Ingest, Prepared, prepare


def item(job: int) -> Prepared:
    body = b'{"status": ["acp", "aer"], "job_id": %d}' % job
    return prepare(Event.from_callback("wordy-main", wordy.parse(body, "application/json")), "application/json", body)


def test_concurrent_callbacks_are_stored_once_each_duplicates_recognised_within_one_batch(
    redis_url: str, rdb: redis.Redis
) -> None:
    ingest = Ingest()

    async def main() -> list[bool]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            first = [item(job) for job in range(40)]
            answers = await asyncio.gather(*(ingest.submit(client, i) for i in [*first, *first[:10]]))
            return [answer.created for answer in answers]
        finally:
            await client.aclose()

    answers = asyncio.run(main())
    assert answers == [True] * 40 + [False] * 10
    assert rdb.llen(keys.INBOX) == 40 and rdb.llen(keys.QUEUE_KEY) == 1  # one drain job for all
    assert len(rdb.keys(keys.event("*"))) == 40


def test_every_caller_in_a_batch_gets_the_connection_error_so_each_can_spool() -> None:
    ingest = Ingest()

    async def main() -> list[object]:
        client = redis.asyncio.Redis(unix_socket_path="/nonexistent/redis.sock")
        try:
            return await asyncio.gather(*(ingest.submit(client, item(job)) for job in range(5)), return_exceptions=True)
        finally:
            await client.aclose()

    answers = asyncio.run(main())
    assert len(answers) == 5 and all(isinstance(a, RedisConnectionError) for a in answers)


def test_a_server_that_lost_the_script_gets_it_again(redis_url: str, rdb: redis.Redis) -> None:
    ingest = Ingest()

    async def main() -> list[bool]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            await ingest.submit(client, item(1))
            rdb.script_flush()  # as after a failover to a replica that never loaded it
            answers = await asyncio.gather(*(ingest.submit(client, item(job)) for job in range(2, 6)))
            return [answer.created for answer in answers]
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [True] * 4


def test_constants_written_into_the_script_are_the_bytes_they_were(rdb: redis.Redis) -> None:
    from workhooks.store.ingest import lua_string

    every_byte = bytes(range(256)) + b"\\\"9'x"
    assert rdb.eval(f"return {lua_string(every_byte)}", 0) == every_byte
    assert rdb.eval(f"return {lua_string(keys.PREFIX)}", 0) == keys.PREFIX.encode()
