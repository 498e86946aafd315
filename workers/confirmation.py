"""Callbacks a platform's API contradicted (`confirm: true` on a Wordy source): recorded, not applied.

A mismatch (forged, or stale: the platform says the subject is elsewhere now) is recorded with
both sides and not delivered; its event id is released so that the real change, when
reconciliation or a later callback finds it, is accepted under the same id.
"""

from __future__ import annotations

import time

import redis
import structlog

from workhooks.core.clock import utc_now
from workhooks.core.events import Event
from workhooks.store import keys

log = structlog.get_logger("workhooks.worker")


def record(connection: redis.Redis, event: Event, actual: str) -> None:
    with connection.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.mismatch(event.id),
            mapping={"event": event.to_json(), "claimed": str(event.data.get("status")), "actual": actual,
                     "at": utc_now()},
        )  # fmt: skip
        pipe.expire(keys.mismatch(event.id), keys.EVENT_TTL)
        pipe.zadd(keys.MISMATCHES, {event.id: time.time()})
        pipe.delete(keys.event(event.id))
        pipe.execute()
    log.warning(
        "callback_not_confirmed",
        subject=event.subject,
        claimed=event.data.get("status"),
        actual=actual,
        action="recorded, not applied or delivered",
    )
