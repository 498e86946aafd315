"""The one place that writes accepted callbacks to Redis.

One Lua script, one round trip: dedupe on the event id, store the event and its redacted raw
body, put its id in the inbox, and queue a drain job if none is waiting (store/inbox.py) —
all or nothing, so an accepted callback is never stored without being queued, nor queued twice.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import NoScriptError

from workhooks.core.events import Event
from workhooks.core.redact import redact
from workhooks.store import inbox, keys

# KEYS: event, raw, inbox, event index, then queue_drain's four (flag, job, queue, queues).
# ARGV: event json, ttl, content type, raw body, received at, event id, received at as a Unix time
# (the score in the event index, which forgets events past their ttl), then queue_drain's five.
_STORE_AND_QUEUE = (
    inbox.QUEUE_DRAIN
    + """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[2], 'content_type', ARGV[3], 'body', ARGV[4], 'received_at', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[7]) - tonumber(ARGV[2]))
queue_drain(KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12])
return 1
"""
)


WAIT_MS = 200


class NotReplicatedError(Exception):
    """Stored on the primary, but no replica confirmed it within WAIT_MS."""

    def __init__(self, stored: bool) -> None:
        super().__init__("no replica confirmed the write")
        self.stored = stored


@dataclass(frozen=True, slots=True)
class Prepared:
    """An accepted callback, redacted, ready for Redis (or for the spool while Redis is away)."""

    event_id: str
    event_json: bytes
    content_type: str
    body: bytes
    received_at: str

    def to_line(self) -> bytes:
        record = {
            "id": self.event_id,
            "event": self.event_json.decode(),
            "content_type": self.content_type,
            "body": base64.b64encode(self.body).decode(),
            "received_at": self.received_at,
        }
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Prepared:
        record = json.loads(line)
        return cls(
            record["id"],
            record["event"].encode(),
            record["content_type"],
            base64.b64decode(record["body"]),
            record["received_at"],
        )


def prepare(event: Event, content_type: str, body: bytes, secrets: Iterable[str] = ()) -> Prepared:
    secrets = list(secrets)
    stored = redact(event.to_json().encode(), secrets)  # a sender may echo its key into callback_params
    return Prepared(event.id, stored, content_type, redact(body, secrets), event.time)


class Ingest:
    """Stores events and their processing jobs; usable from async (receiver) and sync (CLI) code."""

    def __init__(self, queue_name: str = keys.QUEUE, replicas: int = 0) -> None:
        self.replicas = replicas  # acknowledge only once this many replicas have the write (Redis WAIT)
        self._waiting: list[tuple[Prepared, asyncio.Future[bool]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._script = redis.asyncio.Redis().register_script(_STORE_AND_QUEUE)  # EVALSHA, loaded on demand
        self._script_sync = redis.Redis().register_script(_STORE_AND_QUEUE)
        self._drain = inbox.DrainJob(queue_name)

    def _call(self, item: Prepared) -> tuple[list[str], list[Any]]:
        job_id = f"drain-{item.event_id}"  # unique: the event id is, and only its first arrival gets here
        script_keys = [keys.event(item.event_id), keys.raw(item.event_id), keys.INBOX, keys.EVENTS_INDEX]
        received = datetime.fromisoformat(item.received_at.replace("Z", "+00:00")).timestamp()
        args: list[Any] = [item.event_json, keys.EVENT_TTL, item.content_type, item.body, item.received_at]
        args += [item.event_id, received]
        return [*script_keys, *self._drain.keys(job_id)], [*args, *self._drain.args(job_id)]

    async def submit(self, client: redis.asyncio.Redis, item: Prepared) -> bool:
        """True when stored and queued now; False when the same event was already accepted.

        Callbacks that arrive together go to Redis together: each waits for the next turn of the
        event loop, and everything submitted by then is sent as one pipeline (one write, one read)
        instead of one round trip each. Each callback's script call is still all or nothing, and
        each gets its own answer or error. With replicas the pipeline ends in one WAIT, and a write
        no replica confirmed in time raises NotReplicatedError (it is on the primary, which may yet
        be lost).
        """
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((item, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._send_waiting, client)
        return await answer

    def _send_waiting(self, client: redis.asyncio.Redis) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._send(client, batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, client: redis.asyncio.Redis, batch: list[tuple[Prepared, asyncio.Future[bool]]]) -> None:
        try:
            answers = await self._pipeline(client, [item for item, _ in batch])
        except BaseException as error:  # the connection failed: every caller spools its own
            answers = [error] * len(batch)
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    async def _pipeline(self, client: redis.asyncio.Redis, items: list[Prepared]) -> list[bool | BaseException]:
        for _ in range(2):
            async with client.pipeline(transaction=False) as pipe:
                for item in items:
                    script_keys, args = self._call(item)
                    pipe.evalsha(self._script.sha, len(script_keys), *script_keys, *args)
                if self.replicas:
                    pipe.execute_command("WAIT", self.replicas, WAIT_MS)
                results = await pipe.execute(raise_on_error=False)
            if any(isinstance(result, NoScriptError) for result in results):  # a new or flushed server
                await client.script_load(_STORE_AND_QUEUE)
                continue
            stored: list[bool | BaseException] = [
                result if isinstance(result, BaseException) else bool(result) for result in results[: len(items)]
            ]
            if self.replicas:
                confirmed = results[-1]
                if isinstance(confirmed, BaseException) or int(confirmed) < self.replicas:
                    return [s if isinstance(s, BaseException) else NotReplicatedError(s) for s in stored]
            return stored
        raise NoScriptError("the ingest script could not be loaded")

    def submit_sync(self, client: redis.Redis, item: Prepared) -> bool:
        script_keys, args = self._call(item)
        return bool(self._script_sync(keys=script_keys, args=args, client=client))
