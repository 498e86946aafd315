"""RQ entry points: small, by id. They take ids, never payloads, so no body or secret reaches RQ."""

from __future__ import annotations

import time
from typing import Any

import redis
import structlog
from rq.job import get_current_job

from receiver import keys, metrics
from receiver.config import WordySource
from receiver.events import Event
from receiver.ingest import PROCESS_TIMEOUT
from receiver.sources import wordy
from workers import confirmation, delivery, router, settings, state

log = structlog.get_logger("workhooks.worker")
TIMEOUT_MARGIN = 3  # seconds of the processing job's timeout kept free for recording the last attempt


def _connection() -> redis.Redis:
    job = get_current_job()
    if job is None:
        raise RuntimeError("workers.jobs functions run inside an RQ worker")
    return job.connection


def process_event(event_id: str) -> list[str]:
    """Apply the event to its job/task state, open one delivery per matching sink, make each first attempt."""
    structlog.contextvars.clear_contextvars()  # one worker thread runs job after job
    structlog.contextvars.bind_contextvars(event_id=event_id)
    started = time.perf_counter()
    connection = _connection()
    raw = connection.get(keys.event(event_id))
    if raw is None:
        log.warning("event_missing", reason="expired or deleted before processing")
        return []
    event = Event.from_json(raw)
    config = settings.config()
    source = config.sources.get(event.source)
    if isinstance(source, WordySource) and source.confirm and event.type == wordy.STATUS_CHANGED:
        actual = confirmation.check(source, event)  # API down: raises, and RQ retries the job
        if actual is not None:
            confirmation.record(connection, event, actual)
            return []
    chosen: list[str] = []

    def fan_out(pipe: Any, final: Event) -> None:
        chosen[:] = router.sinks_for(config, final)
        delivery.open_deliveries(pipe, final, chosen)
        metrics.count(pipe, "workhooks_events_processed", final.source, final.type)
        metrics.observe(
            pipe, "workhooks_processing_delay_seconds", metrics.seconds_since(final.time) or 0.0, final.source
        )

    final, applied = state.apply_event(connection, event, fan_out)
    if not applied:  # run again after dying mid-job: only what it had not attempted yet
        chosen[:] = delivery.unattempted(connection, final.id, router.sinks_for(config, final))
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
    budget = PROCESS_TIMEOUT - TIMEOUT_MARGIN - (time.perf_counter() - started)
    delivery.first_attempts(connection, final, chosen, budget)
    return chosen


def poll_source(name: str) -> dict[str, object]:
    """Poll one pull source (enqueued by `workhooks scheduler`)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(source=name)
    from workers import polling

    return polling.poll(_connection(), name)


def deliver(event_id: str, sink_name: str, attempt: int = 1) -> str:
    """One attempt to deliver one event to one sink; failures are scheduled again or dead-lettered."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(event_id=event_id, sink=sink_name)
    return delivery.deliver(_connection(), event_id, sink_name, attempt)
