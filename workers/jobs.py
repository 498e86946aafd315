"""RQ entry points. They take ids, never payloads, so no body or secret reaches RQ's job data."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
import structlog
from rq import Queue, Retry
from rq.job import get_current_job

from receiver import keys
from receiver.events import Event, utc_now
from workers import router, settings, state
from workers.exceptions import DeliveryError

DELIVER = "workers.jobs.deliver"
DELIVERY_TIMEOUT = 180
ATTEMPTS_KEPT = 200

log = structlog.get_logger("workhooks.worker")


def _connection() -> redis.Redis:
    job = get_current_job()
    if job is None:
        raise RuntimeError("workers.jobs functions run inside an RQ worker")
    return job.connection


def delivered_key(event_id: str) -> str:
    return f"{keys.PREFIX}delivered:{event_id}"


def attempts_key(event_id: str) -> str:
    return f"{keys.PREFIX}attempts:{event_id}"


def delivery_job_id(event_id: str, sink: str) -> str:
    return f"{event_id}-{sink}"


def _enqueue_deliveries(connection: redis.Redis, pipe: Any, event: Event, sink_names: list[str]) -> None:
    queue = Queue(keys.DELIVERIES_QUEUE, connection=connection)
    sinks = settings.config().sinks
    for name in sink_names:
        intervals = sinks[name].retry_intervals
        job = queue.create_job(
            DELIVER,
            args=(event.id, name),
            job_id=delivery_job_id(event.id, name),
            description=f"deliver {event.id} to {name}",
            timeout=DELIVERY_TIMEOUT,
            result_ttl=3600,
            failure_ttl=365 * 24 * 3600,
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        )
        queue.enqueue_job(job, pipeline=pipe)


def process_event(event_id: str) -> list[str]:
    """Apply the event to its job/task state, then queue one delivery per matching sink."""
    structlog.contextvars.bind_contextvars(event_id=event_id)
    connection = _connection()
    raw = connection.get(keys.event(event_id))
    if raw is None:
        log.warning("event_missing", reason="expired or deleted before processing")
        return []
    event = Event.from_json(raw)
    config = settings.config()
    chosen: list[str] = []

    def fan_out(pipe: Any, final: Event) -> None:
        chosen[:] = router.sinks_for(config, final)
        _enqueue_deliveries(connection, pipe, final, chosen)

    final, applied = state.apply_event(connection, event, fan_out)
    log.info(
        "event_processed",
        source=final.source,
        type=final.type,
        subject=final.subject,
        phase=final.phase,
        sinks=chosen,
        outcome="applied" if applied else "already_applied",
    )
    return chosen


def _record(connection: redis.Redis, event_id: str, attempt: dict[str, Any]) -> None:
    key = attempts_key(event_id)
    with connection.pipeline(transaction=False) as pipe:
        pipe.rpush(key, json.dumps(attempt))
        pipe.ltrim(key, -ATTEMPTS_KEPT, -1)
        pipe.expire(key, keys.EVENT_TTL)
        if attempt["outcome"] == "delivered":
            pipe.hset(delivered_key(event_id), attempt["sink"], attempt["at"])
            pipe.expire(delivered_key(event_id), keys.EVENT_TTL)
        pipe.execute()


def deliver(event_id: str, sink_name: str) -> str:
    """One attempt to deliver one event to one sink; a failure raises so RQ retries it."""
    structlog.contextvars.bind_contextvars(event_id=event_id, sink=sink_name)
    connection = _connection()
    if connection.hexists(delivered_key(event_id), sink_name):
        log.info("delivery_skipped", reason="already delivered")
        return "already_delivered"
    raw = connection.get(keys.event(event_id))
    sink = settings.sink(sink_name)
    if raw is None or sink is None:
        reason = "event expired or deleted" if raw is None else "sink no longer configured"
        log.warning("delivery_dropped", reason=reason)
        return "dropped"
    event = Event.from_json(raw)
    started = time.perf_counter()
    attempt: dict[str, Any] = {"sink": sink_name, "at": utc_now()}
    try:
        sink.send(event)
    except DeliveryError as error:
        attempt |= {"outcome": "failed", "status_code": error.status_code, "error": str(error)}
        raise
    else:
        attempt |= {"outcome": "delivered", "status_code": None, "error": None}
    finally:
        attempt["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        _record(connection, event_id, attempt)
        log.info("delivery_attempt", type=event.type, **{k: v for k, v in attempt.items() if k != "sink"})
    return "delivered"
