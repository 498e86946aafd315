"""`confirm: true` on a Wordy source: a status callback is applied only if Wordy's API agrees.

A mismatch (forged, or stale: Wordy says the job is elsewhere now) is recorded with both sides
and not delivered; its event id is released so that the real change, when reconciliation or a
later callback finds it, is accepted under the same id.
"""

from __future__ import annotations

import time

import redis
import structlog

from receiver import keys
from receiver.config import WordySource
from receiver.events import Event, utc_now
from workers.pollers import wordy as wordy_api

MISMATCHES = keys.PREFIX + "mismatches"
log = structlog.get_logger("workhooks.worker")


def mismatch_key(event_id: str) -> str:
    return f"{keys.PREFIX}mismatch:{event_id}"


def check(source: WordySource, event: Event) -> str | None:
    """None when Wordy's API shows the job in the status the callback claims; else what it shows."""
    api = wordy_api.client(source)
    try:
        job = wordy_api.job(source, api, int(event.data["job_id"]))
    finally:
        api.close()
    actual = job.get("status")
    return None if actual == event.data.get("status") else str(actual)


def record(connection: redis.Redis, event: Event, actual: str) -> None:
    with connection.pipeline(transaction=True) as pipe:
        pipe.hset(
            mismatch_key(event.id),
            mapping={"event": event.to_json(), "claimed": str(event.data.get("status")), "actual": actual,
                     "at": utc_now()},
        )  # fmt: skip
        pipe.expire(mismatch_key(event.id), keys.EVENT_TTL)
        pipe.zadd(MISMATCHES, {event.id: time.time()})
        pipe.delete(keys.event(event.id))
        pipe.execute()
    log.warning(
        "callback_not_confirmed",
        job_id=event.data.get("job_id"),
        claimed=event.data.get("status"),
        actual=actual,
        action="recorded, not applied or delivered",
    )
