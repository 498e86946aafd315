"""Bodies that authenticated but could not be parsed, kept (redacted) until an operator replays them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio

from workhooks.core.clock import utc_now
from workhooks.core.events import Event
from workhooks.core.exceptions import CallbackError
from workhooks.platforms import PLATFORMS
from workhooks.store import keys
from workhooks.store.ingest import Ingest, prepare

if TYPE_CHECKING:
    from workhooks.config.schema import Config


@dataclass(frozen=True, slots=True)
class Quarantined:
    id: str
    source: str
    reason: str
    content_type: str
    body: bytes
    received_at: str

    @classmethod
    def from_hash(cls, item_id: str, fields: Mapping[Any, Any]) -> Quarantined:
        def text(name: str) -> str:
            return bytes(fields.get(name.encode(), b"")).decode("utf-8", "replace")

        return cls(
            item_id, text("source"), text("reason"), text("content_type"), fields.get(b"body", b""), text("received_at")
        )


async def put(client: redis.asyncio.Redis, source: str, reason: str, content_type: str, body: bytes) -> str:
    item_id = f"q_{int(time.time() * 1000)}_{secrets.token_hex(4)}"
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.quarantined(item_id),
            mapping={
                "source": source,
                "reason": reason,
                "content_type": content_type,
                "body": body,
                "received_at": utc_now(),
            },
        )
        pipe.expire(keys.quarantined(item_id), keys.QUARANTINE_TTL)
        pipe.zadd(keys.QUARANTINE_INDEX, {item_id: time.time()})
        await pipe.execute()
    return item_id


def list_items(client: redis.Redis, limit: int = 100) -> list[Quarantined]:
    items = []
    for raw_id in client.zrevrange(keys.QUARANTINE_INDEX, 0, limit - 1):
        item_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        fields = client.hgetall(keys.quarantined(item_id))
        if fields:
            items.append(Quarantined.from_hash(item_id, fields))
        else:  # expired
            client.zrem(keys.QUARANTINE_INDEX, item_id)
    return items


def get(client: redis.Redis, item_id: str) -> Quarantined | None:
    fields = client.hgetall(keys.quarantined(item_id))
    return Quarantined.from_hash(item_id, fields) if fields else None


def remove(client: redis.Redis, item_id: str) -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.quarantined(item_id))
        pipe.zrem(keys.QUARANTINE_INDEX, item_id)
        pipe.execute()


def replay(client: redis.Redis, config: Config, item_id: str, ingest: Ingest | None = None) -> tuple[bool, str]:
    """Parse a quarantined body again (after a fix) and queue it if it now parses: (ok, what happened)."""
    found = get(client, item_id)
    source = config.sources.get(found.source) if found else None
    if found is None or source is None:
        return False, "not found" if found is None else "its source is no longer configured"
    reader = PLATFORMS[source.platform].callback
    if reader is None:
        return False, f"its source is a {source.platform} source, which does not call back"
    try:
        callback = reader.parse(found.body, found.content_type)
    except CallbackError as error:
        return False, f"still cannot be parsed: {error}"
    event = Event.from_callback(found.source, callback, time=found.received_at)
    prepared = prepare(event, found.content_type, found.body, source.secrets())
    accepted = (ingest or Ingest()).submit_sync(client, prepared, late=True)  # as of when it first arrived
    remove(client, item_id)
    return True, f"{'queued as' if accepted.created else 'already accepted as'} {accepted.id}"
