"""Commands that are written only if what the caller read is still there: optimistic locking in one script.

The hot path of a worker (an event applied to its subject's state, workers/state.py) used WATCH, then a
read, then MULTI, two dozen commands and EXEC: three round trips, and redis-py's packing and parsing
of every queued command, about a third of a worker's CPU per event (bench/process.py, py-spy). Here the
commands are recorded on a redis-py pipeline that is never executed (``recorder``), and ``write`` sends
them in one script call that first checks what WATCH would have guarded: the state key still holds
the bytes read, and the event's processed mark is still absent. A mismatch writes nothing and the
caller reads again, as after a WatchError. Writing a key from a script invalidates other clients'
WATCH on it, so the code that still uses WATCH on the same keys (keep_facts, the CLI's seeding) is
as safe as before.

As with EXEC: when Redis is out of memory (``noeviction``, deploy/redis.conf) nothing is written and
the OOM error is raised (a script's first write is the last point Redis checks memory, so the script
begins with a write that writes nothing, and stops there if it is refused); a command that fails as
it runs (WRONGTYPE) does not stop the others, and the first error is raised after them. Unlike EXEC,
a command Redis would have refused to queue (an unknown name, a wrong number of arguments, one an ACL
forbids) fails alone: those are programming errors, not states of the data.

Keys the recorded commands touch are not declared to the script: like the ingest script, it is for a
single Redis (standalone or behind Sentinel), not for Redis Cluster.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.client import Pipeline

from workhooks.store import scripts

# KEYS: the state (a string), the hash holding the mark. ARGV: '1' to compare the state ('0': any state), the
# bytes read ('' for none), the mark's field, then each command as its length and its words.
_WRITE = """
if ARGV[1] == '1' and (redis.call('GET', KEYS[1]) or '') ~= ARGV[2] then
  return 0
end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  return 0
end
local function plain(reply)  -- the error as Redis gave it, without the script's place in it: "OOM ...", "WRONGTYPE ..."
  return {err = (string.gsub(reply.err, '^@[^:]*:%s*%d+:%s*%-?', ''))}
end
local refused = redis.pcall('SETRANGE', KEYS[1], 0, '')  -- writes nothing, but is refused when out of memory
if type(refused) == 'table' and refused.err then
  return plain(refused)
end
local failed = nil
local i = 4
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local reply = redis.pcall(unpack(ARGV, i + 1, i + n))
  if failed == nil and type(reply) == 'table' and reply.err then
    failed = reply
  end
  i = i + n + 1
end
if failed then
  return plain(failed)
end
return 1
"""
MAX_WORDS = 4000  # per command: Lua 5.1's unpack stops near 8,000, after the commands before it ran
NOT_RECORDED = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "MULTI", "EXEC", "WATCH", "UNWATCH"})
_write = scripts.Script(_WRITE)

# KEYS: the state, the hash holding the mark. ARGV: the mark's field. The state and whether it is marked.
_READ = "return {redis.call('GET', KEYS[1]), redis.call('HEXISTS', KEYS[2], ARGV[1])}"
_read = scripts.Script(_READ)


def recorder(connection: redis.Redis) -> Pipeline:
    """A pipeline with redis-py's whole command API, used only to record: ``write`` sends what it holds."""
    return connection.pipeline(transaction=False)


def read(connection: redis.Redis, key: str, mark_key: str, mark_field: str) -> tuple[bytes | None, bool]:
    """``key``'s value and whether ``mark_key`` has ``mark_field``, in one round trip."""
    value, marked = _read(keys=[key, mark_key], args=[mark_field], client=connection)
    return value, bool(marked)


def write(
    connection: redis.Redis,
    commands: Pipeline,
    state_key: str,
    mark_key: str,
    mark_field: str,
    state: bytes | None = None,
    compare: bool = True,
) -> bool:
    """Run the ``commands`` recorded if ``mark_key`` has no ``mark_field`` and (``compare``) ``state_key`` still
    holds ``state`` (None: it did not exist); False, and nothing written, otherwise."""
    args: list[Any] = ["1" if compare else "0", state or b"", mark_field]
    for words, _ in commands.command_stack:
        name = str(words[0]).upper()
        if name in NOT_RECORDED or " " in name or len(words) > MAX_WORDS:
            raise ValueError(f"{name} ({len(words)} words) cannot be part of a guarded write")
        args.append(len(words))
        args.extend(words)
    commands.command_stack.clear()
    return bool(_write(keys=[state_key, mark_key], args=args, client=connection))
