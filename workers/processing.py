"""Processing one accepted event: apply it to its job/task state, open its deliveries, attempt them."""

from __future__ import annotations

import time
from typing import Any

import redis
import structlog

from workers import confirmation, delivery, router, settings, state
from workhooks.core.clock import seconds_since, utc_now
from workhooks.core.derived import is_derived
from workhooks.core.events import Event
from workhooks.core.logs import CachedLogger
from workhooks.platforms import PLATFORMS
from workhooks.store import ingest, keys, telemetry

log = CachedLogger("workhooks.worker")


def mark_processed(pipe: Any, event_id: str) -> None:
    pipe.hset(keys.raw(event_id), state.PROCESSED_AT, utc_now())


def process(connection: redis.Redis, event_id: str, raw: bytes | str | None) -> list[str]:
    """Process one event (``raw``: as stored): apply it, and queue its deliveries in the same transaction.

    Safe to run again for the same event after dying anywhere in it: the state transaction
    applies an event once, with its deliveries; a second run queues only what a previous
    release's run left unqueued.
    """
    structlog.contextvars.clear_contextvars()  # one worker thread runs event after event
    structlog.contextvars.bind_contextvars(event_id=event_id)
    started = time.perf_counter()
    if raw is None:
        log.warning("event_missing", reason="expired or deleted before processing")
        return []
    event = Event.from_json(raw)
    config = settings.config()
    derived = is_derived(event.type)  # ours: nothing to confirm, no platform record to claim
    source = config.sources.get(event.source) if not derived else None
    facts: dict[str, Any] = {}
    if source is not None:
        platform = PLATFORMS[source.platform]
        confirmed = platform.confirm(source, event)  # API down: raises, the event is retried
        if confirmed is not None and confirmed.actual is not None:
            confirmation.record(connection, event, confirmed.actual)
            mark_processed(connection, event.id)
            return []
        facts = dict(confirmed.facts) if confirmed is not None else {}
        records = platform.occurrences(source, event)  # the same
        if records:  # the platform shows which record this is: the first no other event announced
            holder = ingest.claim(connection, event.source, event.subject, event.id, records)
            if holder != event.id:
                confirmation.resent(connection, event, holder)
                return []
    chosen: list[str] = []
    known = PLATFORMS[source.platform].status_phases if source is not None else {}
    status = event.data.get("status")
    unknown = bool(known) and isinstance(status, str) and status not in known
    if unknown:
        hint = "a status the platform's document does not name: delivered as it is, with no phase"
        log.warning("unknown_status", source=event.source, subject=event.subject, status=str(status)[:32], hint=hint)

    def fan_out(pipe: Any, final: Event) -> None:
        chosen[:] = router.sinks_for(config, final)
        delivery.open_deliveries(pipe, final, chosen)
        mark_processed(pipe, final.id)
        telemetry.count(pipe, "workhooks_events_processed", final.source, final.type)
        if unknown:
            telemetry.count(pipe, "workhooks_unknown_statuses", final.source)
        telemetry.observe(pipe, "workhooks_processing_delay_seconds", seconds_since(final.time) or 0.0, final.source)

    final, applied = state.apply_event(connection, event, fan_out, facts)
    if not applied:  # run again: only what the previous release's run had neither attempted nor queued
        chosen[:] = delivery.queue_pending(connection, final, router.sinks_for(config, final))
    log.info(
        "event_processed",
        source=final.source,
        type=final.type,
        subject=final.subject,
        phase=final.phase,
        sinks=chosen,
        outcome="applied" if applied else "already_applied",
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return chosen
