"""The one place that writes accepted callbacks to Redis.

One Lua script, one round trip: dedupe on the event id, store the event and its redacted raw
body, put its id in the inbox, and queue a drain job if none is waiting (store/inbox.py) —
all or nothing, so an accepted callback is never stored without being queued, nor queued twice.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import NoScriptError
from rq.utils import now, utcformat

from workhooks.core.events import PENDING_ID, PENDING_SEQUENCE, Event, Observation
from workhooks.core.exceptions import CallbackError
from workhooks.core.redact import redact, redact_body
from workhooks.platforms import PLATFORMS
from workhooks.store import inbox, keys, scripts

# The identity rule, in one script so that it is atomic with the write (module docstring).
# KEYS: the subject's lanes (hash), its ring (list), the inbox, the event index, then queue_drain's
# flag, queue and queues. ARGV: see Ingest._call. What is the same on every call (TTLs, the key prefix,
# the drain job's template) is written into the script's text by script_text() instead of sent each time.
_STORE_AND_QUEUE = (
    inbox.QUEUE_DRAIN
    + r"""
local lanes, ring = KEYS[1], KEYS[2]
local event_json, content_type, body, received_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local id, received, material = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local lane, value, kind, legacy, late = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12] == '1'
local seen = lane .. '\0' .. value
local cur_value, cur_id
if lane ~= '' then
  cur_value = redis.call('HGET', lanes, lane .. ':value')
  cur_id = redis.call('HGET', lanes, lane .. ':id')
  local blank = kind == 'says' and not redis.call('HGET', lanes, 'last') or kind ~= 'says' and not cur_value
  if blank and legacy ~= '' and redis.call('EXISTS', prefix .. 'event:' .. legacy) == 1 then
    -- stored by the release before observations: a resend of it, and now where the subject stands
    redis.call('HSET', lanes, lane .. ':value', value, lane .. ':id', legacy, lane .. ':at', received,
      'last', seen, 'last_id', legacy)
    redis.call('LPUSH', ring, seen .. '\0' .. legacy .. '\0' .. received)
    redis.call('LTRIM', ring, 0, ring_size - 1)
    redis.call('EXPIRE', ring, state_ttl)
    redis.call('EXPIRE', lanes, state_ttl)
    return {0, legacy}
  end
  -- what the subject showed when this arrived: now, or (a late arrival) as of its arrival time
  local shown, shown_id, after, after_id = nil, nil, nil, nil
  local newest, newest_any = true, true
  if late then
    local best, first_after = -1, nil
    for _, entry in ipairs(redis.call('LRANGE', ring, 0, -1)) do
      local e_lane, e_value, e_id, e_at = string.match(entry, '^(.-)%z(.*)%z([^%z]*)%z([^%z]*)$')
      e_at = tonumber(e_at)
      if e_at then
        if e_at > received then
          newest_any = false
          if e_lane == lane then
            newest = false
            if first_after == nil or e_at < first_after then
              first_after, after, after_id = e_at, e_lane .. '\0' .. e_value, e_id
            end
          end
        elseif (kind == 'says' or e_lane == lane) and e_at > best then
          best, shown, shown_id = e_at, e_lane .. '\0' .. e_value, e_id
        end
      end
    end
  end
  if shown == nil and newest then
    if kind == 'says' then
      shown, shown_id = redis.call('HGET', lanes, 'last'), redis.call('HGET', lanes, 'last_id')
    elseif cur_value then
      shown, shown_id = lane .. '\0' .. cur_value, cur_id
    end
  end
  if shown == seen and shown_id then
    return {0, shown_id}
  end
  if after == seen and after_id then  -- the same occurrence, accepted live meanwhile by another receiver
    return {0, after_id}
  end
  local n = redis.call('HINCRBY', lanes, lane .. ':n', 1)
  id = 'evt_' .. string.sub(redis.sha1hex(material .. '\0' .. seen .. '\0' .. n), 1, 32)
  if newest then
    redis.call('HSET', lanes, lane .. ':prev_value', cur_value or '', lane .. ':prev_id', cur_id or '',
      lane .. ':value', value, lane .. ':id', id, lane .. ':at', received)
  end
  if newest_any then
    local last, last_id = redis.call('HGET', lanes, 'last'), redis.call('HGET', lanes, 'last_id')
    redis.call('HSET', lanes, 'prev_last', last or '', 'prev_last_id', last_id or '', 'last', seen, 'last_id', id)
  end
  redis.call('LPUSH', ring, seen .. '\0' .. id .. '\0' .. received)
  redis.call('LTRIM', ring, 0, ring_size - 1)
  redis.call('EXPIRE', ring, state_ttl)
end
local event_key = prefix .. 'event:' .. id
if redis.call('EXISTS', event_key) == 1 then
  return {0, id}
end
local seq = redis.call('HINCRBY', lanes, 'seq', 1)
redis.call('EXPIRE', lanes, state_ttl)
if lane ~= '' then  -- the envelope's id comes before any data: the first match is it
  event_json = (string.gsub(event_json, '"@@pending%-id@@"', '"' .. id .. '"', 1))
end
-- when it reached a receiver (ms), then the subject's count: spools drained in any order still sort
-- by arrival, and after every sequence the release before gave (a 16-digit count)
local sequence = string.format('%016d%04d', math.floor(received * 1000), seq % 10000)
event_json = (string.gsub(event_json, '"@@pending%-sequence@@"', '"' .. sequence .. '"', 1))
redis.call('SET', event_key, event_json, 'EX', ttl)
local raw = prefix .. 'raw:' .. id
redis.call('HSET', raw, 'content_type', content_type, 'body', body, 'received_at', received_at)
if ARGV[14] ~= '' then
  redis.call('HSET', raw, 'receipt', ARGV[14])  -- what the receiver answered while Redis was away
end
redis.call('EXPIRE', raw, ttl)
redis.call('RPUSH', KEYS[3], id)
redis.call('ZADD', KEYS[4], received, id)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', received - ttl)
local job_id = 'drain-' .. id
queue_drain(KEYS[5], job_prefix .. job_id, KEYS[6], KEYS[7], job_id, drain_constant, drain_data, ARGV[13], drain_ttl)
return {1, id}
"""
)
RING = 32  # recent observations of a subject kept for late arrivals
_CONSTANTS = """
local ttl, prefix, state_ttl, ring_size, job_prefix = {ttl}, {prefix}, {state_ttl}, {ring_size}, {job_prefix}
local drain_constant, drain_data, drain_ttl = {drain_constant}, {drain_data}, {drain_ttl}
"""


def lua_string(value: str | bytes) -> str:
    """A Lua string literal holding exactly ``value``'s bytes (decimal escapes, which Lua 5.1 reads as bytes)."""
    data = value.encode() if isinstance(value, str) else value
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:03d}" for b in data) + '"'


def script_text(drain: inbox.DrainJob) -> str:
    """The ingest script with this process's constants written in: one text, so one SHA, per release and queue."""
    head = _CONSTANTS.format(
        ttl=int(keys.EVENT_TTL), prefix=lua_string(keys.PREFIX), state_ttl=int(keys.STATE_TTL), ring_size=RING,
        job_prefix=lua_string(keys.rq_job("")), drain_constant=lua_string(drain.constant),
        drain_data=lua_string(drain.data), drain_ttl=int(keys.DRAIN_QUEUED_TTL),
    )  # fmt: skip
    return inbox.QUEUE_DRAIN + head + _STORE_AND_QUEUE.removeprefix(inbox.QUEUE_DRAIN)


# KEYS: a subject's lanes, its ring. ARGV: an event id. The event leaves the ring, and every lane it
# set, if it still holds it, goes back to the newest observation left in the ring for that lane (so
# two refused callbacks in a row never give back one another's value), else to the value before
# (a callback the platform's API contradicted, workers/confirmation.py).
_RELEASE = """
local lanes, ring, id = KEYS[1], KEYS[2], ARGV[1]
local kept = {}
for _, entry in ipairs(redis.call('LRANGE', ring, 0, -1)) do
  local e_lane, e_value, e_id, e_at = string.match(entry, '^(.-)%z(.*)%z([^%z]*)%z([^%z]*)$')
  if e_id == id then
    redis.call('LREM', ring, 0, entry)
  elseif e_lane then
    table.insert(kept, {e_lane, e_value, e_id, tonumber(e_at) or 0})
  end
end
local function newest(lane)  -- nil: of any lane
  local best = nil
  for _, e in ipairs(kept) do
    if (lane == nil or e[1] == lane) and (best == nil or e[4] > best[4]) then best = e end
  end
  return best
end
local fields = redis.call('HGETALL', lanes)
local released = 0
for i = 1, #fields, 2 do
  local name, held = fields[i], fields[i + 1]
  if held == id and string.sub(name, -3) == ':id' and string.sub(name, -8) ~= ':prev_id' then
    local lane = string.sub(name, 1, -4)
    local back = newest(lane)
    local before = redis.call('HGET', lanes, lane .. ':prev_value')
    if back then
      redis.call('HSET', lanes, lane .. ':value', back[2], lane .. ':id', back[3], lane .. ':at', back[4])
    elseif before and before ~= '' then
      redis.call('HSET', lanes, lane .. ':value', before, lane .. ':id', redis.call('HGET', lanes, lane .. ':prev_id'))
    else
      redis.call('HDEL', lanes, lane .. ':value', lane .. ':id')
    end
    released = released + 1
  end
end
if redis.call('HGET', lanes, 'last_id') == id then
  local back = newest(nil)
  local before = redis.call('HGET', lanes, 'prev_last')
  if back then
    redis.call('HSET', lanes, 'last', back[1] .. '\0' .. back[2], 'last_id', back[3])
  elseif before and before ~= '' then
    redis.call('HSET', lanes, 'last', before, 'last_id', redis.call('HGET', lanes, 'prev_last_id'))
  else
    redis.call('HDEL', lanes, 'last', 'last_id')
  end
end
return released
"""
_release = scripts.Script(_RELEASE)


def release(connection: redis.Redis, source: str, subject: str, event_id: str) -> int:
    """Take back what an event's observation set, where nothing newer has replaced it since."""
    return int(_release(keys=[keys.lanes(source, subject), keys.ring(source, subject)], args=[event_id],
                        client=connection))  # fmt: skip


# KEYS: a subject's claims. ARGV: an event id, the ttl, then the platform records it may be, oldest
# first. Returns the id holding the record the event is: its own (claimed now, or by a run before),
# else the holder of the newest (every one is announced already: the event is a resend).
_CLAIM = """
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then return ARGV[1] end
end
for i = 3, #ARGV do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1]) == 1 then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
    return ARGV[1]
  end
end
return redis.call('HGET', KEYS[1], ARGV[#ARGV])
"""
_claim = scripts.Script(_CLAIM)


def claim(connection: redis.Redis, source: str, subject: str, event_id: str, records: list[str]) -> str:
    """The event that announces the first of ``records`` no other event holds: ``event_id``, unless
    every one is held (then the holder of the newest: ``event_id`` is a resend of it)."""
    held = _claim(keys=[keys.claims(source, subject)], args=[event_id, keys.STATE_TTL, *records], client=connection)
    return held.decode() if isinstance(held, bytes) else str(held)


WAIT_MS = 200


class NotReplicatedError(Exception):
    """Stored on the primary, but no replica confirmed it within WAIT_MS."""

    def __init__(self, accepted: Accepted) -> None:
        super().__init__("no replica confirmed the write")
        self.accepted = accepted


@dataclass(frozen=True, slots=True)
class Prepared:
    """An accepted callback, redacted, ready for Redis (or for the spool while Redis is away).

    ``event_id`` is final for content identity; for an observation it is a receipt until the
    ingest script assigns the id (``Accepted.id``).
    """

    event_id: str
    event_json: bytes
    content_type: str
    body: bytes
    received_at: str
    source: str = ""
    type: str = ""
    subject: str = ""
    observation: Observation | None = None
    legacy_id: str = ""  # the id content identity gives: a resend of what the release before stored

    def to_line(self) -> bytes:
        record: dict[str, Any] = {
            "id": self.event_id,
            "event": self.event_json.decode(),
            "content_type": self.content_type,
            "body": base64.b64encode(self.body).decode(),
            "received_at": self.received_at,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "legacy_id": self.legacy_id,
        }
        if self.observation is not None:
            record["observation"] = [self.observation.lane, self.observation.value, self.observation.kind]
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Prepared:
        """A spooled record, including those the release before observations wrote (_upgraded)."""
        record = json.loads(line)
        if "source" not in record:
            return _upgraded(record)
        seen = record.get("observation")
        return cls(
            record["id"],
            record["event"].encode(),
            record["content_type"],
            base64.b64decode(record["body"]),
            record["received_at"],
            record.get("source", ""),
            record.get("type", ""),
            record.get("subject", ""),
            Observation(seen[0], seen[1], seen[2]) if seen else None,
            record.get("legacy_id", ""),
        )


def _upgraded(record: dict[str, Any]) -> Prepared:
    """A line the release before observations spooled: its (redacted) body read again by its platform's
    parser gives the observation, so it takes part in the identity rule like any callback; the id that
    release answered becomes the receipt and, while stored, is recognised as the same event."""
    envelope, body = json.loads(record["event"]), base64.b64decode(record["body"])
    source, kind, subject = envelope["source"].removeprefix("/sources/"), envelope["type"], envelope["subject"]
    platform = PLATFORMS.get(kind.partition(".")[0])
    try:
        parsed = platform.callback.parse(body, record["content_type"]) if platform and platform.callback else None
    except CallbackError:
        parsed = None
    if parsed is None or parsed.observation is None or (parsed.type, parsed.subject) != (kind, subject):
        return Prepared(record["id"], record["event"].encode(), record["content_type"], body, record["received_at"],
                        source, kind, subject)  # fmt: skip
    pending = Event(PENDING_ID, source, kind, subject, envelope["time"], envelope.get("data") or {},
                    envelope.get("phase"), PENDING_SEQUENCE)  # fmt: skip
    return Prepared(record["id"], pending.to_json().encode(), record["content_type"], body, record["received_at"],
                    source, kind, subject, parsed.observation, record["id"])  # fmt: skip


@dataclass(frozen=True, slots=True)
class Accepted:
    created: bool  # False: the same occurrence was accepted before (a resend)
    id: str


def receipt_id() -> str:
    """What a spooled observation is answered with while Redis (which gives its id) is away: unique, not secret
    (the sender is told it), so 128 bits of ``random`` (reseeded in every forked child) rather than the system's
    generator, whose read was a syscall per callback."""
    return f"rcpt_{random.getrandbits(128):032x}"


def prepare(
    event: Event, content_type: str, body: bytes, secrets: Iterable[str] = (), document: object = None
) -> Prepared:
    """``document``: the body as parsed JSON, when it was (workhooks/core/redact.py need not parse it again)."""
    secrets = secrets if isinstance(secrets, (list, tuple)) else list(secrets)
    stored = redact(event.to_bytes(), secrets)  # a sender may echo its key into callback_params
    receipt = receipt_id() if event.observation is not None else event.id
    body, seen = redact_body(body, content_type, secrets, document), event.observation
    if seen is not None:  # an observed value is stored in the subject's lanes: a status may be anything sent
        seen = dataclasses.replace(seen, value=redact(seen.value.encode(), secrets).decode(errors="replace"))
    return Prepared(
        receipt, stored, content_type, body, event.time, event.source, event.type, event.subject,
        seen, event.content_id if seen is not None else "",
    )  # fmt: skip


class Ingest:
    """Stores events and their processing jobs; usable from async (receiver) and sync (CLI) code.

    ``late``: the callback arrived earlier than now (drained from a spool, replayed from the
    quarantine): it is compared with what its subject showed when it arrived, not now.
    """

    def __init__(self, queue_name: str = keys.QUEUE, replicas: int = 0) -> None:
        self.replicas = replicas  # acknowledge only once this many replicas have the write (Redis WAIT)
        self._waiting: list[tuple[Prepared, bool, asyncio.Future[Accepted]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._drain = inbox.DrainJob(queue_name)
        self._text = script_text(self._drain)
        self._script = scripts.Script(self._text)  # EVALSHA, loaded on demand
        self._connections = scripts.Kept()

    def _call(self, item: Prepared, late: bool) -> tuple[list[str], list[Any]]:
        source, kind, subject = item.source, item.type, item.subject
        seen = item.observation
        drain = self._drain
        script_keys = [keys.lanes(source, subject), keys.ring(source, subject), keys.INBOX, keys.EVENTS_INDEX,
                       keys.DRAIN_QUEUED, drain.queue.key, drain.queue.redis_queues_keys]  # fmt: skip
        received = repr(
            datetime.fromisoformat(item.received_at.replace("Z", "+00:00")).timestamp()
        )  # as redis-py sent it
        args: list[Any] = [
            item.event_json, item.content_type, item.body, item.received_at,
            "" if seen else item.event_id, received, f"{source}\0{kind}\0{subject}",
            seen.lane if seen else "", seen.value if seen else "", seen.kind if seen else "", item.legacy_id,
            "1" if late else "0", utcformat(now()) if late else item.received_at,  # the drain job's time: now
            item.event_id if seen else "",
        ]  # fmt: skip
        return script_keys, args

    @staticmethod
    def _accepted(result: Any) -> Accepted:
        created, event_id = result
        return Accepted(bool(created), event_id.decode() if isinstance(event_id, bytes) else str(event_id))

    async def submit(self, client: redis.asyncio.Redis, item: Prepared, late: bool = False) -> Accepted:
        """Stored and queued now (created), or the same occurrence was accepted before; with its id.

        Callbacks that arrive together go to Redis together: each waits for the next turn of the
        event loop, and everything submitted by then is sent as one pipeline (one write, one read)
        instead of one round trip each. Each callback's script call is still all or nothing, and
        each gets its own answer or error. With replicas the pipeline ends in one WAIT, and a write
        no replica confirmed in time raises NotReplicatedError (it is on the primary, which may yet
        be lost).
        """
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Accepted] = loop.create_future()
        self._waiting.append((item, late, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._send_waiting, client)
        return await answer

    def _send_waiting(self, client: redis.asyncio.Redis) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._send(client, batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(
        self, client: redis.asyncio.Redis, batch: list[tuple[Prepared, bool, asyncio.Future[Accepted]]]
    ) -> None:
        try:
            answers = await self._pipeline(client, [(item, late) for item, late, _ in batch])
        except BaseException as error:  # the connection failed: every caller spools its own
            answers = [error] * len(batch)
        for (_, _, future), answer in zip(batch, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    async def _pipeline(
        self, client: redis.asyncio.Redis, items: list[tuple[Prepared, bool]]
    ) -> list[Accepted | BaseException]:
        commands: list[tuple[Any, ...]] = []
        for item, late in items:
            script_keys, args = self._call(item, late)
            commands.append((b"EVALSHA", self._script.sha, len(script_keys), *script_keys, *args))
        if self.replicas:
            commands.append((b"WAIT", self.replicas, WAIT_MS))
        packed = scripts.packed(commands)
        for _ in range(2):
            results = await self._connections.round_trip(client, packed, len(commands))
            if any(isinstance(result, NoScriptError) for result in results):  # a new or flushed server
                await client.script_load(self._text)
                continue
            stored: list[Accepted | BaseException] = [
                result if isinstance(result, BaseException) else self._accepted(result)
                for result in results[: len(items)]
            ]
            if self.replicas:
                confirmed = results[-1]
                if isinstance(confirmed, BaseException) or int(confirmed) < self.replicas:
                    return [s if isinstance(s, BaseException) else NotReplicatedError(s) for s in stored]
            return stored
        raise NoScriptError("the ingest script could not be loaded")

    def submit_sync(self, client: redis.Redis, item: Prepared, late: bool = False) -> Accepted:
        script_keys, args = self._call(item, late)
        return self._accepted(self._script(keys=script_keys, args=args, client=client))
