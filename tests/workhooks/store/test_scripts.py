"""Scripts and commands sent without redis-py's client machinery answer as redis-py's own calls do."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

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
