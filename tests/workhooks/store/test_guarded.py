"""A guarded write happens only if what was read is still there, and runs every command as EXEC does."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import OutOfMemoryError, ResponseError

from workhooks.store import guarded


def test_the_commands_run_when_the_state_and_the_mark_are_as_read(rdb: redis.Redis) -> None:
    rdb.set("state", b'{"n":1}')
    state, marked = guarded.read(rdb, "state", "raw", "done")
    assert (state, marked) == (b'{"n":1}', False)
    commands = guarded.recorder(rdb)
    commands.set("state", b'{"n":2}', ex=60)
    commands.zadd("index", {"s": 1.5})
    commands.hset("raw", "done", "yes")
    assert guarded.write(rdb, commands, "state", "raw", "done", state)
    assert rdb.get("state") == b'{"n":2}' and 0 < rdb.ttl("state") <= 60
    assert rdb.zscore("index", "s") == 1.5 and guarded.read(rdb, "state", "raw", "done") == (b'{"n":2}', True)


def test_nothing_is_written_when_another_writer_changed_the_state_meanwhile(rdb: redis.Redis) -> None:
    state, _ = guarded.read(rdb, "state", "raw", "done")  # none yet
    assert state is None
    rdb.set("state", b"theirs")
    commands = guarded.recorder(rdb)
    commands.set("state", b"ours")
    commands.set("other", b"ours")
    assert not guarded.write(rdb, commands, "state", "raw", "done", state)
    assert rdb.get("state") == b"theirs" and rdb.get("other") is None


def test_nothing_is_written_when_the_mark_appeared_meanwhile(rdb: redis.Redis) -> None:
    commands = guarded.recorder(rdb)
    commands.set("routed", b"again")
    rdb.hset("raw", "done", "by another worker")
    assert not guarded.write(rdb, commands, "state", "raw", "done", compare=False)  # the mark alone guards
    assert rdb.get("routed") is None


def test_a_failing_command_does_not_stop_the_others_and_its_error_is_raised(rdb: redis.Redis) -> None:
    rdb.set("a string", b"x")
    commands = guarded.recorder(rdb)
    commands.set("before", 1)
    commands.hset("a string", "field", 1)  # WRONGTYPE, as it would be inside MULTI/EXEC
    commands.set("after", 2)
    with pytest.raises(ResponseError, match=r"^WRONGTYPE"):
        guarded.write(rdb, commands, "state", "raw", "done", compare=False)
    assert rdb.mget("before", "after") == [b"1", b"2"]


def test_out_of_memory_writes_nothing_and_says_so_as_exec_would(rdb: redis.Redis) -> None:
    rdb.set("state", b"read")
    rdb.zadd("phase", {"s": 1})
    before = str(rdb.config_get("maxmemory")["maxmemory"])
    commands = guarded.recorder(rdb)
    commands.zrem("phase", "s")  # a first command that frees memory, then ones that need it
    commands.set("state", b"written")
    commands.hset("raw", "done", "yes")
    rdb.config_set("maxmemory", 1)  # noeviction (the default policy): every write that needs memory is refused
    try:
        with pytest.raises(OutOfMemoryError):
            guarded.write(rdb, commands, "state", "raw", "done", b"read")
    finally:
        rdb.config_set("maxmemory", before)
    assert rdb.get("state") == b"read" and rdb.zscore("phase", "s") == 1 and not rdb.hexists("raw", "done")


def test_what_a_guarded_write_cannot_hold_is_refused_before_anything_is_sent(rdb: redis.Redis) -> None:
    for words in (("EVAL", "return 1", 0), ("OBJECT ENCODING", "x"), ("RPUSH", "list", *range(guarded.MAX_WORDS))):
        commands = guarded.recorder(rdb)
        commands.set("first", 1)
        commands.execute_command(*words)  # type: ignore[no-untyped-call]
        with pytest.raises(ValueError, match="cannot be part of a guarded write"):
            guarded.write(rdb, commands, "state", "raw", "done", compare=False)
    assert rdb.get("first") is None and rdb.llen("list") == 0
