"""A guarded write happens only if what was read is still there, and runs every command as EXEC does."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import ResponseError

from workhooks.store import guarded


def test_the_commands_run_when_the_state_and_the_mark_are_as_read(rdb: redis.Redis) -> None:
    rdb.set("state", b'{"n":1}')
    state, marked = guarded.read(rdb, "state", "raw", "done")
    assert (state, marked) == (b'{"n":1}', False)
    commands = guarded.recorder(rdb)
    commands.set("state", b'{"n":2}', ex=60)
    commands.zadd("index", {"s": 1.5})
    commands.hset("raw", "done", "yes")
    assert guarded.write(rdb, commands, "raw", "done", "state", state)
    assert rdb.get("state") == b'{"n":2}' and 0 < rdb.ttl("state") <= 60
    assert rdb.zscore("index", "s") == 1.5 and guarded.read(rdb, "state", "raw", "done") == (b'{"n":2}', True)


def test_nothing_is_written_when_another_writer_changed_the_state_meanwhile(rdb: redis.Redis) -> None:
    state, _ = guarded.read(rdb, "state", "raw", "done")  # none yet
    assert state is None
    rdb.set("state", b"theirs")
    commands = guarded.recorder(rdb)
    commands.set("state", b"ours")
    commands.set("other", b"ours")
    assert not guarded.write(rdb, commands, "raw", "done", "state", state)
    assert rdb.get("state") == b"theirs" and rdb.get("other") is None


def test_nothing_is_written_when_the_mark_appeared_meanwhile(rdb: redis.Redis) -> None:
    commands = guarded.recorder(rdb)
    commands.set("routed", b"again")
    rdb.hset("raw", "done", "by another worker")
    assert not guarded.write(rdb, commands, "raw", "done")  # no state compared: the mark alone guards
    assert rdb.get("routed") is None


def test_a_failing_command_does_not_stop_the_others_and_its_error_is_raised(rdb: redis.Redis) -> None:
    rdb.set("a string", b"x")
    commands = guarded.recorder(rdb)
    commands.set("before", 1)
    commands.hset("a string", "field", 1)  # WRONGTYPE, as it would be inside MULTI/EXEC
    commands.set("after", 2)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        guarded.write(rdb, commands, "raw", "done")
    assert rdb.mget("before", "after") == [b"1", b"2"]
