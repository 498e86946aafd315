"""Redis key names and RQ names shared by receiver and workers (the storage contract)."""

from __future__ import annotations

PREFIX = "wh:"
EVENTS_QUEUE = "workhooks-events"
DELIVERIES_QUEUE = "workhooks-deliveries"
PROCESS_EVENT = "workers.jobs.process_event"  # enqueued by path: receiver never imports workers
EVENT_TTL = 30 * 24 * 3600  # how long events, raw bodies and their dedupe keys are kept
QUARANTINE_TTL = 30 * 24 * 3600
QUARANTINE_INDEX = PREFIX + "quarantine"


def event(event_id: str) -> str:
    return f"{PREFIX}event:{event_id}"


def raw(event_id: str) -> str:
    return f"{PREFIX}raw:{event_id}"


def quarantined(item_id: str) -> str:
    return f"{PREFIX}quarantine:{item_id}"
