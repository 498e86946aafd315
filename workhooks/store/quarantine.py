"""Bodies that authenticated but could not be parsed, kept (redacted) until an operator replays them.

Bounded: each entry expires after QUARANTINE_TTL, and the index keeps the QUARANTINE_MAX newest;
both are enforced when an entry is added, so the index (and the gauge counting it) never holds
entries whose bodies are gone.
"""

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
from workhooks.core.redact import redact
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


# KEYS: the entry, the index. ARGV: its id, now (Unix time), the TTL, the cap, the entry key prefix,
# then field, value pairs. Expired ids leave the index (their hashes are gone already); past the cap,
# the oldest go with their hashes. The index expires with its newest entry.
_PUT = """
local id, now, ttl, cap, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, id)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local over = redis.call('ZCARD', KEYS[2]) - cap
if over > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    redis.call('DEL', prefix .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
end
redis.call('EXPIRE', KEYS[2], ttl)
return over > 0 and over or 0
"""
_put = redis.asyncio.Redis().register_script(_PUT)  # EVALSHA, loaded on demand


async def put(client: redis.asyncio.Redis, source: str, reason: str, content_type: str, body: bytes) -> str:
    now = time.time()
    item_id = f"q_{int(now * 1000)}_{secrets.token_hex(4)}"
    fields: dict[str, str | bytes] = {
        "source": source,
        "reason": reason,
        "content_type": content_type,
        "body": body,
        "received_at": utc_now(),
    }
    pairs = [part for name, value in fields.items() for part in (name, value)]
    await _put(
        keys=[keys.quarantined(item_id), keys.QUARANTINE_INDEX],
        args=[item_id, repr(now), keys.QUARANTINE_TTL, keys.QUARANTINE_MAX, keys.quarantined(""), *pairs],
        client=client,
    )
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
        reason = redact(str(error).encode(), config.secrets()).decode(errors="replace")
        return False, f"still cannot be parsed: {reason}"
    event = Event.from_callback(found.source, callback, time=found.received_at)
    prepared = prepare(event, found.content_type, found.body, config.secrets())
    accepted = (ingest or Ingest()).submit_sync(client, prepared, late=True)  # as of when it first arrived
    remove(client, item_id)
    return True, f"{'queued as' if accepted.created else 'already accepted as'} {accepted.id}"
