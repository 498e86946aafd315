"""Callbacks a platform's API contradicted (`confirm: true` on a Wordy source): recorded, not applied.

A mismatch (forged, or stale: the platform says the subject is elsewhere now and cannot have
got there from what the callback claims) is recorded with both sides and not delivered; the
lane it set goes back to its value before, unless a newer observation has replaced it since.

A resend the platform's records show (every conversation entry with its words is announced
already) is dropped: the event is deleted, its lane given back, and the log says which event
announced it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import redis
import structlog

from workhooks.core.clock import utc_now
from workhooks.core.events import Event
from workhooks.store import ingest, keys, telemetry

log = structlog.get_logger("workhooks.worker")


def record(connection: redis.Redis, event: Event, actual: str) -> None:
    with connection.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.mismatch(event.id),
            mapping={"event": event.to_json(), "claimed": str(event.data.get("status")), "actual": actual,
                     "at": utc_now()},
        )  # fmt: skip
        pipe.expire(keys.mismatch(event.id), keys.EVENT_TTL)
        now = time.time()
        pipe.zadd(keys.MISMATCHES, {event.id: now})
        pipe.zremrangebyscore(keys.MISMATCHES, "-inf", now - keys.EVENT_TTL)  # their records are gone by then
        pipe.expire(keys.MISMATCHES, keys.EVENT_TTL)
        pipe.delete(keys.event(event.id))
        telemetry.count(pipe, "workhooks_mismatches", event.source)
        pipe.execute()
    ingest.release(connection, event.source, event.subject, event.id)  # its lane goes back, if still its
    log.warning(
        "callback_not_confirmed",
        subject=event.subject,
        claimed=event.data.get("status"),
        actual=actual,
        action="recorded, not applied or delivered",
    )


def resent(connection: redis.Redis, event: Event, holder: str) -> None:
    with connection.pipeline(transaction=True) as pipe:
        pipe.delete(keys.event(event.id), keys.raw(event.id))
        pipe.zrem(keys.EVENTS_INDEX, event.id)
        telemetry.count(pipe, "workhooks_resends_recognised", event.source)
        pipe.execute()
    ingest.release(connection, event.source, event.subject, event.id)
    log.info(
        "resend_recognised",
        subject=event.subject,
        announced_by=holder,
        reason="the platform shows this message once, and it was announced",
        action="dropped",
    )


@dataclass(frozen=True)
class Mismatch:
    event: Event
    claimed: str
    actual: str
    at: str


def list_mismatches(connection: redis.Redis, limit: int = 100) -> list[Mismatch]:
    """The callbacks confirm refused, newest first (the console's failures, `events list --status mismatch`)."""
    ids = [raw.decode() for raw in cast(list[bytes], connection.zrevrange(keys.MISMATCHES, 0, limit - 1))]
    with connection.pipeline(transaction=False) as pipe:
        for event_id in ids:
            pipe.hgetall(keys.mismatch(event_id))
        found = pipe.execute()
    return [
        Mismatch(Event.from_json(fields[b"event"]), fields[b"claimed"].decode(), fields[b"actual"].decode(),
                 fields[b"at"].decode())
        for fields in found if fields
    ]  # fmt: skip
