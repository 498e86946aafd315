"""Redis key names and RQ names shared by receiver and workers (the storage contract)."""

from __future__ import annotations

PREFIX = "wh:"
# One queue for processing and delivery jobs: RQ dequeues from a single queue with LMOVE into a
# recoverable intermediate list (Redis >= 6.2), but from several with BLPOP, which loses the job
# if the worker dies right after the pop.
QUEUE = "workhooks"
EVENT_TTL = 30 * 24 * 3600  # how long events, raw bodies and their dedupe keys are kept
QUARANTINE_TTL = 30 * 24 * 3600
QUARANTINE_INDEX = PREFIX + "quarantine"
EVENTS_INDEX = PREFIX + "events"  # sorted set: event id -> received at (Unix time)
DEAD_INDEX = PREFIX + "dead"  # deliveries out of attempts or refused (workers/delivery.py)


def event(event_id: str) -> str:
    return f"{PREFIX}event:{event_id}"


def raw(event_id: str) -> str:
    return f"{PREFIX}raw:{event_id}"


def quarantined(item_id: str) -> str:
    return f"{PREFIX}quarantine:{item_id}"


def poll_status(name: str) -> str:
    """A pull source's last poll: last_ok_at, failures, last_error (workers/polling.py writes it)."""
    return f"{PREFIX}poll:status:{name}"
