"""One delivery = one event to one sink: attempts, retries with jitter, dead letters, replay.

Retries are scheduled here rather than by RQ's fixed ``Retry`` so that a destination's
Retry-After is honoured, a permanent refusal goes straight to dead letters, and every
attempt is recorded with its time, status code, error and duration.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
import structlog
from rq.job import Job
from rq.utils import now

from workers import derived, router, settings
from workers.exceptions import DeliveryError
from workhooks.core.clock import seconds_since, utc_now
from workhooks.core.events import Event
from workhooks.core.redact import redact
from workhooks.store import jobs, keys, telemetry

JITTER = 0.2  # each retry waits its interval ±20%
ATTEMPTS_KEPT = 200

PENDING, DELIVERED, DEAD, DROPPED = "pending", "delivered", "dead", "dropped"

log = structlog.get_logger("workhooks.worker")


def delivery_id(event_id: str, sink: str) -> str:
    return f"{event_id}-{sink}"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    sink: str
    status: str
    attempts: int
    created_at: str
    updated_at: str
    last_error: str
    last_status_code: str
    next_attempt_at: str

    @classmethod
    def from_hash(cls, item_id: str, fields: dict[Any, Any]) -> Delivery:
        def text(name: str) -> str:
            value = fields.get(name.encode(), b"")
            return value.decode() if isinstance(value, bytes) else str(value)

        return cls(
            item_id,
            text("event_id"),
            text("sink"),
            text("status"),
            int(text("attempts") or 0),
            text("created_at"),
            text("updated_at"),
            text("last_error"),
            text("last_status_code"),
            text("next_attempt_at"),
        )


def job_timeout(sink: str) -> int:
    """Long enough for the sink's own timeout, so RQ never kills an attempt the sink would finish."""
    configured = settings.config().sinks.get(sink)
    return keys.delivery_timeout(configured.attempt_timeout() if configured is not None else None)


def _job(connection: redis.Redis, event_id: str, sink: str, attempt: int) -> Job:
    item_id = delivery_id(event_id, sink)
    return jobs.create(
        jobs.queue(connection),
        keys.DELIVER,
        keys.DELIVERY,
        (event_id, sink, attempt),
        f"{item_id}-{attempt}-{secrets.token_hex(3)}",
        f"deliver {item_id} attempt {attempt}",
        timeout=job_timeout(sink),
    )


def open_deliveries(pipe: Any, event: Event, sinks: Iterable[str]) -> None:
    """Inside the processing transaction: one pending delivery per sink, not attempted yet.

    The processing job then makes each first attempt itself (``first_attempts``): one RQ job per
    event instead of one more per sink, which halves RQ's bookkeeping per delivered event.
    """
    stamp, opened = utc_now(), time.time()
    for sink in sinks:
        item_id = delivery_id(event.id, sink)
        pipe.hset(
            keys.delivery(item_id),
            mapping={"event_id": event.id, "sink": sink, "status": PENDING, "attempts": 0, "created_at": stamp,
                     "updated_at": stamp},
        )  # fmt: skip
        pipe.expire(keys.delivery(item_id), keys.EVENT_TTL)
        pipe.zadd(keys.DELIVERIES_INDEX, {item_id: opened})
    trim(pipe, keys.DELIVERIES_INDEX, opened)


def trim(pipe: Any, index: str, now: float) -> None:
    """An index of deliveries drops the ids whose hashes have expired, and expires with its newest.

    A delivery's hash lives EVENT_TTL from when it was opened, which is never later than when it
    was indexed (opened, or dead), so nothing past EVENT_TTL in either index still exists.
    """
    pipe.zremrangebyscore(index, "-inf", now - keys.EVENT_TTL)
    pipe.expire(index, keys.EVENT_TTL)


def unattempted(connection: redis.Redis, event_id: str, sinks: Iterable[str]) -> list[str]:
    """The sinks whose delivery of this event is open but neither attempted nor queued yet.

    Only a processing job that died between its transaction and its first attempts leaves such
    deliveries behind; RQ runs it again, and this finds them.
    """
    sinks = list(sinks)
    with connection.pipeline(transaction=False) as pipe:
        for sink in sinks:
            pipe.hmget(keys.delivery(delivery_id(event_id, sink)), "status", "attempts", "queued")
        found = pipe.execute()
    return [
        sink
        for sink, (status, tries, queued) in zip(sinks, found, strict=True)
        if status == PENDING.encode() and int(tries or 0) == 0 and not queued
    ]


def first_attempts(connection: redis.Redis, event: Event, sinks: Iterable[str], deadline: float) -> None:
    """Attempt each delivery here while the sink's timeout fits before ``deadline`` (monotonic); queue the rest."""
    for sink in sinks:
        if job_timeout(sink) - keys.DELIVERY_TIMEOUT_MARGIN <= deadline - time.monotonic():
            with structlog.contextvars.bound_contextvars(sink=sink):
                attempt(connection, event, sink, 1)
        else:
            jobs.enqueue_with(connection, _job(connection, event.id, sink, 1), _marks_queued(event.id, sink))


def _marks_queued(event_id: str, sink: str) -> Callable[[Any], None]:
    return lambda pipe: pipe.hset(keys.delivery(delivery_id(event_id, sink)), "queued", 1)


def backoff(intervals: list[int], attempt: int, retry_after: float | None) -> float | None:
    """Seconds before attempt ``attempt + 1``, or None when the schedule is used up."""
    if attempt > len(intervals):
        return None
    if retry_after is not None:
        return max(retry_after, 1.0)
    base = intervals[attempt - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


def _template(event: Event, sink: str) -> Any:
    for target in router.plan(settings.config(), event):
        if target.sink == sink:
            return target.template
    return None


def deliver(connection: redis.Redis, event_id: str, sink_name: str, attempt_number: int) -> str:
    """A queued attempt (a retry, a replay, or a first attempt its processing job had no time for)."""
    status = connection.hget(keys.delivery(delivery_id(event_id, sink_name)), "status")
    if status == DELIVERED.encode():
        log.info("delivery_skipped", reason="already delivered")
        return DELIVERED
    raw = connection.get(keys.event(event_id))
    if raw is None:
        return _drop(connection, event_id, sink_name, "event expired or deleted")
    return attempt(connection, Event.from_json(raw), sink_name, attempt_number)


def _drop(connection: redis.Redis, event_id: str, sink_name: str, reason: str) -> str:
    fields: dict[Any, Any] = {"status": DROPPED, "last_error": reason, "updated_at": utc_now()}
    connection.hset(keys.delivery(delivery_id(event_id, sink_name)), mapping=fields)
    log.warning("delivery_dropped", reason=reason)
    return DROPPED


def _unbuildable(sink_name: str, failure: Exception) -> DeliveryError:
    """A sink whose settings its type cannot use: a dead letter saying why (retrying cannot build it either).

    Before this, the exception left ``attempt`` and failed the whole processing job, so no sink
    after it was tried and RQ's reruns met the same wall. The reason is redacted: it may quote a setting.
    """
    reason = f"sink {sink_name} cannot be built: {type(failure).__name__}: {failure}"
    reason = redact(reason.encode(), settings.config().secrets()).decode(errors="replace")
    log.error("sink_not_built", reason=reason)
    return DeliveryError(reason, permanent=True)


def attempt(connection: redis.Redis, event: Event, sink_name: str, attempt: int) -> str:
    """Send ``event`` to the sink once; record the attempt; schedule the next one or dead-letter it."""
    item_id = delivery_id(event.id, sink_name)
    key = keys.delivery(item_id)
    event_id = event.id
    started = time.perf_counter()
    error: DeliveryError | None = None
    try:
        sink = settings.sink(sink_name)
    except Exception as failure:  # this sink's own deliveries fail; the caller goes on to the other sinks
        sink, error = None, _unbuildable(sink_name, failure)
    else:
        if sink is None:
            return _drop(connection, event_id, sink_name, "sink no longer configured")
    if sink is not None:
        try:
            sink.send(event, _template(event, sink_name))
        except DeliveryError as failure:
            error = failure
        except Exception as failure:  # a bug or an unexpected library error: record it, retry like any failure
            log.exception("sink_raised", sink_type=type(sink).__name__)
            error = DeliveryError(f"{type(failure).__name__}: {failure}")
    duration = round((time.perf_counter() - started) * 1000, 2)

    record: dict[str, Any] = {"sink": sink_name, "attempt": attempt, "at": utc_now(), "duration_ms": duration}
    fields: dict[Any, Any] = {"updated_at": record["at"]}
    delay: float | None = None
    if error is None:
        outcome = DELIVERED
        record |= {"outcome": DELIVERED, "status_code": None, "error": None}
        fields |= {"status": DELIVERED, "last_error": "", "last_status_code": "", "next_attempt_at": ""}
    else:
        intervals = settings.config().sinks[sink_name].retry_intervals
        delay = None if error.permanent else backoff(intervals, attempt, error.retry_after)
        outcome = DEAD if delay is None else PENDING
        record |= {
            "outcome": "failed",
            "status_code": error.status_code,
            "error": str(error),
            "permanent": error.permanent,
        }
        fields |= {"status": outcome, "last_error": str(error), "last_status_code": error.status_code or ""}
        fields["next_attempt_at"] = "" if delay is None else (now() + timedelta(seconds=delay)).isoformat()

    with connection.pipeline(transaction=True) as pipe:
        pipe.rpush(keys.attempts(event_id), json.dumps(record))
        pipe.ltrim(keys.attempts(event_id), -ATTEMPTS_KEPT, -1)
        pipe.expire(keys.attempts(event_id), keys.EVENT_TTL)
        pipe.hset(key, mapping=fields)
        pipe.hincrby(key, "attempts", 1)
        telemetry.count(pipe, "workhooks_deliveries", sink_name, DEAD if outcome == DEAD else record["outcome"])
        telemetry.observe(pipe, "workhooks_delivery_seconds", duration / 1000, sink_name)
        if outcome == DELIVERED:
            telemetry.observe(pipe, "workhooks_delivered_delay_seconds", seconds_since(event.time) or 0.0, sink_name)
        if outcome == DEAD:
            died = time.time()
            pipe.zadd(keys.DEAD_INDEX, {item_id: died})
            trim(pipe, keys.DEAD_INDEX, died)
        elif delay is not None:
            jobs.queue(connection).schedule_job(
                _job(connection, event_id, sink_name, attempt + 1), now() + timedelta(seconds=delay), pipe
            )
        pipe.execute()
    if outcome == DEAD:
        _announce_dead(connection, event, sink_name, item_id, str(error))
    log.info(
        "delivery_attempt",
        source=event.source,
        type=event.type,
        attempt=attempt,
        outcome=record["outcome"],
        status_code=record["status_code"],
        error=record["error"],
        duration_ms=duration,
        next_attempt_in_s=None if delay is None else round(delay, 1),
        dead=outcome == DEAD,
    )
    return outcome


def _announce_dead(connection: redis.Redis, event: Event, sink_name: str, item_id: str, error: str) -> None:
    """A dead letter as a workhooks.delivery.dead event (not for one of those: no loops). Best effort: the
    dead letter is recorded already, and failing here must not send the delivery again."""
    try:
        attempts = int(connection.hget(keys.delivery(item_id), "attempts") or 0)
        derived.delivery_dead(connection, event, sink_name, item_id, attempts, error, settings.config().secrets())
    except Exception:
        log.exception("dead_letter_not_announced")


def get(connection: redis.Redis, item_id: str) -> Delivery | None:
    fields = connection.hgetall(keys.delivery(item_id))
    return Delivery.from_hash(item_id, fields) if fields else None


def list_deliveries(
    connection: redis.Redis, failed: bool = False, sink: str | None = None, since: float = 0, limit: int = 100
) -> list[Delivery]:
    index = keys.DEAD_INDEX if failed else keys.DELIVERIES_INDEX
    found: list[Delivery] = []
    for raw_id in connection.zrevrangebyscore(index, "+inf", since):
        item_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        item = get(connection, item_id)
        if item is None:
            connection.zrem(index, item_id)  # expired
            continue
        if sink is None or item.sink == sink:
            found.append(item)
            if len(found) >= limit:
                break
    return found


def replay(connection: redis.Redis, item_id: str) -> str:
    """Send a dead (or dropped) delivery again, with a fresh retry schedule."""
    item = get(connection, item_id)
    if item is None:
        return "not found"
    if item.status == DELIVERED:
        return "already delivered"
    if item.status == PENDING:
        return "already pending"

    def reopen(pipe: Any) -> None:
        pipe.hset(keys.delivery(item_id), mapping={"status": PENDING, "updated_at": utc_now(), "next_attempt_at": ""})
        pipe.zrem(keys.DEAD_INDEX, item_id)

    jobs.enqueue_with(connection, _job(connection, item.event_id, item.sink, 1), reopen)
    return "queued"


def attempts(connection: redis.Redis, event_id: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in connection.lrange(keys.attempts(event_id), 0, -1)]
