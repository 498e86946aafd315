"""Per-sink delivery queues in Redis: open, take, complete, pause, and what `sinks list` shows.

The design, its keys and its crash table: docs/delivery.md. Every operation here is one Redis
call (a Lua script, or commands inside the caller's MULTI), so each is all or nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from workhooks.store import keys, scripts

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# Outcomes of an attempt for its lane: the head leaves, it is tried again at a time, or it waits
# for the breaker without a retry counted.
DONE, RETRY, HOLD = "done", "retry", "hold"
SUCCESS, FAILURE, NEUTRAL = "1", "-1", "0"  # what the attempt says of the sink's health
IDLE_WAIT_MS = 1000  # a dispatcher with nothing to take looks again at least this often


def now_ms() -> int:
    return int(time.time() * 1000)


def open_in(pipe: Any, sink: str, member: str, delivery_id: str, delivery_key: str) -> None:
    """Inside the caller's MULTI: queue a new delivery (its hash written by the caller) on its lane."""
    pipe.hset(delivery_key, "lane", 1)
    pipe.rpush(keys.outbox_lane(sink, member), delivery_id)
    pipe.expire(keys.outbox_lane(sink, member), keys.EVENT_TTL)
    pipe.zadd(keys.outbox_ready(sink), {member: now_ms()}, nx=True)
    pipe.hincrby(keys.outbox(sink), "held", 1)
    wake(pipe)


def wake(pipe: Any) -> None:
    pipe.lpush(keys.OUTBOX_WAKE, 1)
    pipe.ltrim(keys.OUTBOX_WAKE, 0, keys.OUTBOX_WAKE_MAX - 1)


_WAKE = f"""
local function wake()
  redis.call('LPUSH', '{keys.OUTBOX_WAKE}', 1)
  redis.call('LTRIM', '{keys.OUTBOX_WAKE}', 0, {keys.OUTBOX_WAKE_MAX - 1})
end
-- Redis's clock, not the caller's: leases, rates and probes mean the same for every worker
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: delivery hash, sink hash, ready, lane, dead index. ARGV: member, delivery id, mode, failures
# (for a previous release's retry job; "" keeps them), lane TTL. Modes: "pending" (a delivery the
# previous release's processing never attempted nor queued), "retry" (that release's retry job: its
# failures given), "reopen" (a dead or dropped delivery replayed; it leaves the dead index).
# A delivery already in a lane, or not in the state its mode expects, is left alone: 0.
_ENQUEUE = (
    _WAKE
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or redis.call('HEXISTS', KEYS[1], 'lane') == 1 then return 0 end
local mode = ARGV[3]
if mode == 'reopen' then
  if status ~= 'dead' and status ~= 'dropped' then return 0 end
  redis.call('HSET', KEYS[1], 'status', 'pending', 'failures', 0, 'next_attempt_at', '')
  redis.call('ZREM', KEYS[5], ARGV[2])
elseif status ~= 'pending' then
  return 0
elseif mode == 'pending' then
  local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or 0) or 0
  if attempts > 0 or redis.call('HEXISTS', KEYS[1], 'queued') == 1 then return 0 end  -- its retry job will
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'failures', ARGV[4]) end
redis.call('HSET', KEYS[1], 'lane', 1)
redis.call('RPUSH', KEYS[4], ARGV[2])
redis.call('EXPIRE', KEYS[4], ARGV[5])
redis.call('ZADD', KEYS[3], 'NX', now_ms(), ARGV[1])
redis.call('HINCRBY', KEYS[2], 'held', 1)
wake()
return 1
"""
)

# KEYS: sink hash, ready, leases, owners. ARGV: max in flight, lease ms, rate interval ms (0: none),
# burst, token, lane prefix, at most how many to take, delivery key prefix, event key prefix.
# Returns {reason it stopped, in ms (0: unknown), probe, then per take: member, delivery id, waited ms,
# and the delivery's status, event id, attempts, failures and its event (as stored)}: what the attempt
# needs, in the same round trip.
# The reason is 'take' when it stopped at the count asked for.
_TAKE = (
    _WAKE
    + """
local now = now_ms()
local prefix = ARGV[6]
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[3], member)
  redis.call('HDEL', KEYS[4], member)
  if redis.call('LLEN', prefix .. member) > 0 then redis.call('ZADD', KEYS[2], now, member) end
end
local sink = redis.call('HMGET', KEYS[1], 'paused', 'state', 'probe_at', 'tat', 'not_before')
if sink[1] then return {'paused', 0, 0} end
local state = sink[2] or 'closed'
if state == 'open' then
  local probe_at = tonumber(sink[3]) or 0
  if now < probe_at then return {'open', probe_at - now, 0} end
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state)
end
local in_flight = redis.call('ZCARD', KEYS[3])
local probe, wanted = 0, tonumber(ARGV[7])
if state == 'half_open' then
  if in_flight > 0 then return {'probing', 0, 0} end
  probe, wanted = 1, 1
end
local not_before = tonumber(sink[5]) or 0
if now < not_before then return {'not_before', not_before - now, 0} end
local interval, tat = tonumber(ARGV[3]), tonumber(sink[4]) or 0
local taken = {'take', 0, probe}
local reason, wait = 'take', 0
for _ = 1, wanted + 32 do
  if (#taken - 3) / 8 >= wanted then break end
  if probe == 0 and in_flight >= tonumber(ARGV[1]) then reason = 'full'; break end
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #head == 0 then reason = 'empty'; break end
  local member, ready = head[1], tonumber(head[2])
  if ready > now then reason, wait = 'later', ready - now; break end
  local delivery = redis.call('LINDEX', prefix .. member, 0)
  if redis.call('ZSCORE', KEYS[3], member) or not delivery then
    redis.call('ZREM', KEYS[2], member)  -- in flight (complete puts it back), or nothing left in its lane
  else
    if interval > 0 then
      local next_tat = math.max(tat, now) + interval
      local allowed = next_tat - tonumber(ARGV[4]) * interval
      if now < allowed then reason, wait = 'rate', math.ceil(allowed - now); break end
      tat = next_tat
    end
    redis.call('ZREM', KEYS[2], member)
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), member)
    redis.call('HSET', KEYS[4], member, ARGV[5])
    in_flight = in_flight + 1
    local fields = redis.call('HMGET', ARGV[8] .. delivery, 'status', 'event_id', 'attempts', 'failures')
    local event = fields[2] and redis.call('GET', ARGV[9] .. fields[2]) or false
    for _, value in ipairs({member, delivery, now - ready, fields[1] or '', fields[2] or '', fields[3] or '0',
                            fields[4] or '0', event or ''}) do
      taken[#taken + 1] = value
    end
  end
end
if interval > 0 and tat > 0 then redis.call('HSET', KEYS[1], 'tat', tat) end
taken[1], taken[2] = reason, wait
return taken
"""
)

# KEYS: leases, owners. ARGV: lease ms, then member/token pairs: each lease still held with its token
# runs lease ms from now (a slow attempt in progress is not taken for a dead one).
_RENEW = (
    _WAKE
    + """
local till = now_ms() + tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', till, ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
"""
)

# KEYS: sink hash, ready, leases, owners, lane, delivery hash, dead index, attempts list, worker
# counters. ARGV: member, delivery id, token, outcome (done/retry/hold), retry in ms, health (1/-1/0),
# breaker failures, probe after ms, probe max ms, not before in ms (0: none), probe (1/0), dead (1: add
# to the dead index), TTL of the indexes and the attempts (s), attempts kept, the attempt's record (JSON,
# '' for none), n, then n field/value pairs for the delivery hash, then counter increments as triples
# (i|f, field, amount).
# Returns {applied (0: the lease was lost: only the attempt's record and counters were written),
# transition ('' / 'open' / 'closed')}.
_COMPLETE = (
    _WAKE
    + """
local member, now = ARGV[1], now_ms()
local n = tonumber(ARGV[16])
if ARGV[15] ~= '' then  -- the attempt happened, whoever holds the lease now
  redis.call('RPUSH', KEYS[8], ARGV[15])
  redis.call('LTRIM', KEYS[8], -tonumber(ARGV[14]), -1)
  redis.call('EXPIRE', KEYS[8], ARGV[13])
end
for i = 17 + 2 * n, #ARGV, 3 do
  if ARGV[i] == 'f' then
    redis.call('HINCRBYFLOAT', KEYS[9], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HINCRBY', KEYS[9], ARGV[i + 1], ARGV[i + 2])
  end
end
if redis.call('HGET', KEYS[4], member) ~= ARGV[3] then return {0, ''} end
redis.call('ZREM', KEYS[3], member)
redis.call('HDEL', KEYS[4], member)
if n > 0 then redis.call('HSET', KEYS[6], unpack(ARGV, 17, 16 + 2 * n)) end
if ARGV[12] == '1' then
  redis.call('ZADD', KEYS[7], math.floor(now / 1000), ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', math.floor(now / 1000) - tonumber(ARGV[13]))
  redis.call('EXPIRE', KEYS[7], ARGV[13])
end
if ARGV[4] == 'done' then
  if redis.call('LINDEX', KEYS[5], 0) == ARGV[2] then
    redis.call('LPOP', KEYS[5])
    redis.call('HINCRBY', KEYS[1], 'held', -1)
  end
  redis.call('HDEL', KEYS[6], 'lane')
  if redis.call('LLEN', KEYS[5]) > 0 then redis.call('ZADD', KEYS[2], now, member) end
elseif ARGV[4] == 'retry' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), member)
else
  redis.call('ZADD', KEYS[2], now, member)
end
if tonumber(ARGV[10]) > 0 then
  local till = now + tonumber(ARGV[10])
  if till > (tonumber(redis.call('HGET', KEYS[1], 'not_before')) or 0) then
    redis.call('HSET', KEYS[1], 'not_before', till)
  end
end
if redis.call('ZCARD', KEYS[2]) > 0 then wake() end  -- a slot is free: whoever is idle takes the next
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state ~= 'closed' and ARGV[11] ~= '1' then return {1, ''} end  -- only the probe moves an open breaker
if ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'failures', 0)
  if state ~= 'closed' then
    redis.call('HSET', KEYS[1], 'state', 'closed')
    redis.call('HDEL', KEYS[1], 'probe_at', 'backoff_ms', 'opened_at')
    return {1, 'closed'}
  end
elseif ARGV[6] == '-1' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if state ~= 'closed' or failures >= tonumber(ARGV[7]) then
    local backoff = tonumber(ARGV[8])
    if state ~= 'closed' then
      backoff = math.min((tonumber(redis.call('HGET', KEYS[1], 'backoff_ms')) or backoff) * 2, tonumber(ARGV[9]))
    else
      redis.call('HSET', KEYS[1], 'opened_at', now)
    end
    redis.call('HSET', KEYS[1], 'state', 'open', 'probe_at', now + backoff, 'backoff_ms', backoff)
    return {1, 'open'}
  end
end
return {1, ''}
"""
)


def _function(name: str, script: str) -> str:
    """A script's body as a local function of its own KEYS and ARGV (the parameters shadow the globals)."""
    return f"local function {name}(KEYS, ARGV)\n{script.removeprefix(_WAKE)}\nend\n"


# A completion, then a take from the same sink, in one call: a sending thread that finished one delivery goes on
# with the next without a second round trip. KEYS: the completion's 9, then the take's 4. ARGV: how many of them
# are the completion's, then those, then the take's. Returns {the completion's reply, the take's reply}.
_COMPLETE_TAKE = (
    _WAKE
    + _function("complete", _COMPLETE)
    + _function("take", _TAKE)
    + """
local split = tonumber(ARGV[1])
local complete_args, take_args = {}, {}
for i = 2, #ARGV do
  if i <= split + 1 then complete_args[#complete_args + 1] = ARGV[i] else take_args[#take_args + 1] = ARGV[i] end
end
local completed = complete({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]},
                           complete_args)
return {completed, take({KEYS[10], KEYS[11], KEYS[12], KEYS[13]}, take_args)}
"""
)

_enqueue = scripts.Script(_ENQUEUE)
_take = scripts.Script(_TAKE)
_renew = scripts.Script(_RENEW)
_complete = scripts.Script(_COMPLETE)
_complete_take = scripts.Script(_COMPLETE_TAKE)
PENDING_ONLY, RETRY_JOB, REOPEN = "pending", "retry", "reopen"


def enqueue(
    connection: redis.Redis,
    sink: str,
    member: str,
    delivery_id: str,
    delivery_key: str,
    mode: str = PENDING_ONLY,
    failures: int | None = None,
) -> bool:
    """Queue a delivery that is in no lane (the modes: ``_ENQUEUE``); False when it was left alone."""
    script_keys = [delivery_key, keys.outbox(sink), keys.outbox_ready(sink), keys.outbox_lane(sink, member)]
    script_keys.append(keys.DEAD_INDEX)
    args: list[str | int] = [member, delivery_id, mode, "" if failures is None else failures, keys.EVENT_TTL]
    return bool(_enqueue(keys=script_keys, args=args, client=connection))


@dataclass(frozen=True, slots=True)
class Taken:
    sink: str
    member: str
    delivery_id: str
    token: str
    waited_ms: int  # from when it was due to now: the sink's rate, slots, pause or breaker
    probe: bool
    status: str = ""  # the delivery as it was taken ("": expired)
    event_id: str = ""
    attempts: int = 0
    failures: int = 0
    event: bytes | None = None  # the event as stored (None: expired or deleted)


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # paused, open, probing, full, not_before, rate, later, empty
    in_ms: int  # how long until it may change (0: not known; a completion or a wake token says)


@dataclass(slots=True)
class Next:
    """A take from the same sink made in a completion's own call (``complete(..., then=)``): the deliveries
    it handed out are put in ``found``, why it stopped in ``refused``."""

    token: str
    in_flight: int
    lease_ms: int
    interval_ms: float
    burst: int
    count: int = 1
    found: list[Taken] = field(default_factory=list)
    refused: Refused | None = None


def _take_call(sink: str, then: Next) -> tuple[list[str], list[str | int | float]]:
    script_keys = [keys.outbox(sink), keys.outbox_ready(sink), keys.outbox_leases(sink), keys.outbox_owners(sink)]
    args: list[str | int | float] = [then.in_flight, then.lease_ms, then.interval_ms, then.burst, then.token]
    args += [keys.outbox_lane_prefix(sink), max(1, then.count), keys.delivery(""), keys.event("")]
    return script_keys, args


def _taken(sink: str, token: str, reply: list[Any]) -> tuple[list[Taken], Refused]:
    probe = bool(reply[2])
    found = []
    for i in range(3, len(reply), 8):
        member, delivery_id, waited, status, event_id, attempts, failures, event = reply[i : i + 8]
        found.append(
            Taken(sink, member.decode(), delivery_id.decode(), token, max(0, int(waited)), probe, status.decode(),
                  event_id.decode(), int(attempts or 0), int(failures or 0), event or None)
        )  # fmt: skip
    return found, Refused(reply[0].decode(), max(0, int(reply[1])))


def take(
    connection: redis.Redis,
    sink: str,
    token: str,
    in_flight: int,
    lease_ms: int,
    interval_ms: float,
    burst: int,
    count: int = 1,
) -> tuple[list[Taken], Refused]:
    """Up to ``count`` deliveries from ``sink``'s queue, and why it stopped there (reason "take": the count)."""
    script_keys, args = _take_call(sink, Next(token, in_flight, lease_ms, interval_ms, burst, count))
    return _taken(sink, token, _take(keys=script_keys, args=args, client=connection))


def renew(connection: redis.Redis, sink: str, lease_ms: int, held: Iterable[Taken]) -> int:
    """Extend the leases still held on ``held`` (taken from ``sink``) to ``lease_ms`` from now."""
    pairs: list[str | int] = [lease_ms]
    for taken in held:
        pairs += [taken.member, taken.token]
    if len(pairs) == 1:
        return 0
    script_keys = [keys.outbox_leases(sink), keys.outbox_owners(sink)]
    return int(_renew(keys=script_keys, args=pairs, client=connection))


@dataclass(frozen=True, slots=True)
class Completion:
    outcome: str  # DONE, RETRY, HOLD
    health: str  # SUCCESS, FAILURE, NEUTRAL
    retry_in_ms: int = 0
    not_before_in_ms: int = 0
    dead: bool = False  # add it to the dead index (only if the lease was still this attempt's)


class Counters:
    """Stands in for a pipeline to workhooks.store.telemetry, which adds to the worker counters: the
    increments are collected and applied by the completion script itself."""

    def __init__(self) -> None:
        self.increments: list[str | int | float] = []

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.increments += ["i", field, amount]

    def hincrbyfloat(self, key: str, field: str, amount: float) -> None:
        self.increments += ["f", field, repr(float(amount))]


def complete(
    connection: redis.Redis,
    taken: Taken,
    delivery_key: str,
    completion: Completion,
    fields: Mapping[str, Any],
    breaker: tuple[int, float, float],
    record: str = "",
    counters: Counters | None = None,
    kept: int = 200,
    then: Next | None = None,
) -> tuple[bool, str]:
    """End the lease on ``taken`` with ``completion``, and record the attempt (``record``, JSON) and its
    counters, in one script: (applied, transition). ``applied`` False: the lease had been lost and only the
    record and counters were written; ``transition``: "open", "closed" or "". With ``then``, the same call
    takes the sink's next deliveries (after the completion) and puts them in it."""
    sink, member = taken.sink, taken.member
    script_keys = [
        keys.outbox(sink),
        keys.outbox_ready(sink),
        keys.outbox_leases(sink),
        keys.outbox_owners(sink),
        keys.outbox_lane(sink, member),
        delivery_key,
        keys.DEAD_INDEX,
        keys.attempts(taken.event_id or "-"),
        keys.WORKER_COUNTERS,
    ]
    failures, probe_after, probe_max = breaker
    args: list[Any] = [
        member,
        taken.delivery_id,
        taken.token,
        completion.outcome,
        completion.retry_in_ms,
        completion.health,
        failures,
        int(probe_after * 1000),
        int(probe_max * 1000),
        completion.not_before_in_ms,
        int(taken.probe),
        int(completion.dead),
        keys.EVENT_TTL,
        kept,
        record,
        len(fields),
    ]
    for name, value in fields.items():
        args += [name, "" if value is None else value]
    args += counters.increments if counters is not None else []
    if then is None:
        applied, transition = _complete(keys=script_keys, args=args, client=connection)
    else:
        take_keys, take_args = _take_call(sink, then)
        (applied, transition), reply = _complete_take(
            keys=script_keys + take_keys, args=[len(args), *args, *take_args], client=connection
        )
        then.found, then.refused = _taken(sink, then.token, reply)
    return bool(applied), transition.decode() if isinstance(transition, bytes) else str(transition)


def pause(connection: redis.Redis, sink: str, reason: str, at: str) -> None:
    connection.hset(keys.outbox(sink), mapping={"paused": 1, "paused_reason": reason, "paused_at": at})


def resume(connection: redis.Redis, sink: str) -> bool:
    """Resume a paused sink; False when it was not paused."""
    with connection.pipeline(transaction=True) as pipe:
        pipe.hdel(keys.outbox(sink), "paused", "paused_reason", "paused_at")
        wake(pipe)
        removed, *_ = pipe.execute()
    return bool(removed)


@dataclass(frozen=True, slots=True)
class SinkState:
    name: str
    state: str  # closed, open, half_open
    paused: bool
    paused_reason: str
    paused_at: str
    failures: int
    probe_at_ms: int
    held: int  # deliveries waiting in its lanes, the ones in flight included
    in_flight: int

    @property
    def shown(self) -> str:
        return "paused" if self.paused else self.state

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "state": self.shown,
            "breaker": self.state,
            "in_flight": self.in_flight,
            "held": self.held,
            "failures": self.failures,
        }
        if self.paused:
            found |= {"paused_reason": self.paused_reason, "paused_at": self.paused_at}
        if self.state == OPEN:
            found["probe_in_s"] = max(0.0, round((self.probe_at_ms - now_ms()) / 1000, 1))  # this host's clock
        return found


def ask_states(pipe: Any, sinks: Iterable[str]) -> None:
    """Queue on ``pipe`` (sync or async) what ``parse_states`` reads, two commands per sink."""
    for sink in sinks:
        pipe.hgetall(keys.outbox(sink))
        pipe.zcard(keys.outbox_leases(sink))


def parse_states(replies: list[Any], sinks: Iterable[str]) -> dict[str, SinkState]:
    found: dict[str, SinkState] = {}
    for index, sink in enumerate(sinks):
        raw, in_flight = replies[2 * index], replies[2 * index + 1]
        fields = {key.decode(): value.decode() for key, value in raw.items()}
        found[sink] = SinkState(
            sink,
            fields.get("state", CLOSED),
            "paused" in fields,
            fields.get("paused_reason", ""),
            fields.get("paused_at", ""),
            int(fields.get("failures", 0)),
            int(float(fields.get("probe_at", 0))),
            max(0, int(fields.get("held", 0))),
            int(in_flight),
        )
    return found


def states(connection: redis.Redis, sinks: Iterable[str]) -> dict[str, SinkState]:
    sinks = list(sinks)
    with connection.pipeline(transaction=False) as pipe:
        ask_states(pipe, sinks)
        return parse_states(pipe.execute(), sinks)
