"""One delivery = one event to one sink: attempts, retries with jitter, dead letters, replay.

Deliveries wait in per-sink queues (workhooks/store/outbox.py; the design: docs/delivery.md);
a worker's dispatcher (workers/dispatch.py) takes them under each sink's limits and calls
``attempt`` here once per attempt, from one of its sending threads. Retries are scheduled by the
queue rather than by RQ, so a destination's Retry-After is honoured, a permanent refusal goes
straight to dead letters, a paused or open sink holds its deliveries without spending their
retries, and every attempt is recorded with its time, status code, error and duration.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
import structlog
from rq.utils import now

from workers import derived, router, settings
from workers.exceptions import DeliveryError
from workhooks.core.clock import seconds_since, utc_now
from workhooks.core.events import Event
from workhooks.core.logs import CachedLogger
from workhooks.core.redact import redact
from workhooks.store import keys, outbox, telemetry

JITTER = 0.2  # each retry waits its interval ±20%
ATTEMPTS_KEPT = 200

PENDING, DELIVERED, DEAD, DROPPED = "pending", "delivered", "dead", "dropped"
HELD = "held"  # a failure while the sink's breaker is open: tried again when the breaker allows, no retry spent
RELEASE_RETRY_MS = 60_000

log = CachedLogger("workhooks.worker")


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


def lease_ms(sink: str) -> int:
    """How long a taken delivery is held for its dispatcher: the sink's attempt timeout plus a margin."""
    configured = settings.config().sinks.get(sink)
    timeout = configured.attempt_timeout() if configured is not None else None
    return int((timeout or keys.DELIVERY.timeout) * 1000) + keys.OUTBOX_LEASE_MARGIN_MS


def member(event: Event) -> str:
    return keys.subject_member(event.source, event.subject)


def open_deliveries(pipe: Any, event: Event, sinks: Iterable[str]) -> None:
    """Inside the processing transaction: one pending delivery per sink, queued on its subject's lane."""
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
        outbox.open_in(pipe, sink, member(event), item_id, keys.delivery(item_id))
    trim(pipe, keys.DELIVERIES_INDEX, opened)


def trim(pipe: Any, index: str, now: float) -> None:
    """An index of deliveries drops the ids whose hashes have expired, and expires with its newest.

    A delivery's hash lives EVENT_TTL from when it was opened, which is never later than when it
    was indexed (opened, or dead), so nothing past EVENT_TTL in either index still exists.
    """
    pipe.zremrangebyscore(index, "-inf", now - keys.EVENT_TTL)
    pipe.expire(index, keys.EVENT_TTL)


def queue_pending(connection: redis.Redis, event: Event, sinks: Iterable[str]) -> list[str]:
    """Queue this event's deliveries that are pending and in no lane; the sinks queued.

    Only the previous release leaves such deliveries: its processing job, killed between its
    transaction and its first attempts, is run again by RQ and arrives here.
    """
    return [
        sink
        for sink in sinks
        if outbox.enqueue(
            connection, sink, member(event), delivery_id(event.id, sink), keys.delivery(delivery_id(event.id, sink))
        )
    ]


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
    """A retry the previous release scheduled as an RQ job: queued on its lane, its schedule kept."""
    status = connection.hget(keys.delivery(delivery_id(event_id, sink_name)), "status")
    if status == DELIVERED.encode():
        log.info("delivery_skipped", reason="already delivered")
        return DELIVERED
    raw = connection.get(keys.event(event_id))
    if raw is None:
        item = keys.delivery(delivery_id(event_id, sink_name))
        if connection.exists(item):
            connection.hset(
                item, mapping={"status": DROPPED, "last_error": "event expired or deleted", "updated_at": utc_now()}
            )
        log.warning("delivery_dropped", reason="event expired or deleted")
        return DROPPED
    event = Event.from_json(raw)
    item_id = delivery_id(event_id, sink_name)
    queued = outbox.enqueue(connection, sink_name, member(event), item_id, keys.delivery(item_id),
                            outbox.RETRY_JOB, failures=max(0, attempt_number - 1))  # fmt: skip
    return "queued" if queued else "already queued"


def _unbuildable(sink_name: str, failure: Exception) -> DeliveryError:
    """A sink whose settings its type cannot use: a dead letter saying why (retrying cannot build it either).

    The reason is redacted: it may quote a setting.
    """
    reason = f"sink {sink_name} cannot be built: {type(failure).__name__}: {failure}"
    reason = redact(reason.encode(), settings.config().secrets()).decode(errors="replace")
    log.error("sink_not_built", reason=reason)
    return DeliveryError(reason, permanent=True)


def _breaker(sink_name: str) -> tuple[int, float, float]:
    configured = settings.config().sinks.get(sink_name)
    if configured is None:
        return (5, 5.0, 300.0)
    return (configured.breaker.failures, configured.breaker.probe_after, configured.breaker.probe_max)


def _breaker_open(connection: redis.Redis, sink_name: str) -> bool:
    """The breaker opened while this attempt was out: its failure is held like the others, not counted."""
    return connection.hget(keys.outbox(sink_name), "state") not in (None, outbox.CLOSED.encode())


def put_back(connection: redis.Redis, taken: outbox.Taken) -> None:
    """A delivery taken but not attempted (its worker is stopping): ready again now, no attempt or retry counted."""
    completion = outbox.Completion(outbox.HOLD, outbox.NEUTRAL)
    outbox.complete(connection, taken, keys.delivery(taken.delivery_id), completion, {}, _breaker(taken.sink))


def release(connection: redis.Redis, taken: outbox.Taken, reason: str) -> None:
    """An attempt that failed in our code, not at the sink: tried again in a minute, its subject's lane kept."""
    key = keys.delivery(taken.delivery_id)
    fields = {"last_error": reason[:500], "updated_at": utc_now()} if taken.status else {}
    completion = outbox.Completion(outbox.RETRY, outbox.NEUTRAL, retry_in_ms=RELEASE_RETRY_MS)
    outbox.complete(connection, taken, key, completion, fields, _breaker(taken.sink))


Then = Callable[[], "outbox.Next | None"]  # asked at the completion: what to take next in the same call


def _finish(connection: redis.Redis, taken: outbox.Taken, status: str, reason: str, then: Then | None = None) -> str:
    """End a taken delivery that is not attempted: dropped (no event, no sink) or already delivered."""
    key = keys.delivery(taken.delivery_id)
    fields: dict[str, Any] = {}
    if status == DROPPED and taken.status:
        fields = {"status": DROPPED, "last_error": reason, "updated_at": utc_now()}
        log.warning("delivery_dropped", reason=reason)
    completion = outbox.Completion(outbox.DONE, outbox.NEUTRAL)
    outbox.complete(connection, taken, key, completion, fields, _breaker(taken.sink), then=then() if then else None)
    return status


def attempt(connection: redis.Redis, taken: outbox.Taken, then: Then | None = None) -> str:
    """Send the delivery ``taken`` names once; record the attempt; schedule the next one or dead-letter it.
    With ``then``, asked when the attempt is done, the call that records it also takes the sink's next
    deliveries (``outbox.complete``)."""
    key = keys.delivery(taken.delivery_id)
    sink_name = taken.sink
    if not taken.status:
        return _finish(connection, taken, DROPPED, "delivery expired", then)
    if taken.status == DELIVERED:
        log.info("delivery_skipped", reason="already delivered")
        return _finish(connection, taken, DELIVERED, "", then)
    raw, failures = taken.event, taken.failures
    if raw is None:
        return _finish(connection, taken, DROPPED, "event expired or deleted", then)
    try:
        event = Event.from_json(raw)
    except (ValueError, TypeError, KeyError) as failure:
        return _finish(connection, taken, DROPPED, f"event unreadable: {type(failure).__name__}", then)
    structlog.contextvars.bind_contextvars(event_id=event.id)
    attempt_number = taken.attempts + 1
    started = time.perf_counter()
    error: DeliveryError | None = None
    try:
        sink = settings.sink(sink_name)
    except Exception as failure:  # this sink's own deliveries fail; every other sink goes on
        sink, error = None, _unbuildable(sink_name, failure)
    else:
        if sink is None:
            return _finish(connection, taken, DROPPED, "sink no longer configured", then)
    if sink is not None:
        try:
            sink.send(event, _template(event, sink_name))
        except DeliveryError as failure:
            error = failure
        except Exception as failure:  # a bug or an unexpected library error: record it, retry like any failure
            log.exception("sink_raised", sink_type=type(sink).__name__)
            error = DeliveryError(f"{type(failure).__name__}: {failure}")
    duration = round((time.perf_counter() - started) * 1000, 2)

    record: dict[str, Any] = {"sink": sink_name, "attempt": attempt_number, "at": utc_now(), "duration_ms": duration}
    fields: dict[str, Any] = {"updated_at": record["at"], "attempts": attempt_number}
    delay: float | None = None
    if error is None:
        outcome = DELIVERED
        completion = outbox.Completion(outbox.DONE, outbox.SUCCESS)
        record |= {"outcome": DELIVERED, "status_code": None, "error": None}
        fields |= {"status": DELIVERED, "last_error": "", "last_status_code": "", "next_attempt_at": ""}
    else:
        counted = int(failures or 0) + 1
        health = outbox.NEUTRAL if error.permanent else outbox.FAILURE
        not_before = 0 if error.retry_after is None else int(max(error.retry_after, 1.0) * 1000)
        if not error.permanent and (taken.probe or _breaker_open(connection, sink_name)):
            # the breaker decides when it is tried again, not the retry schedule: no retry spent
            outcome, counted = HELD, counted - 1
            completion = outbox.Completion(outbox.HOLD, health, not_before_in_ms=not_before)
        else:
            intervals = settings.config().sinks[sink_name].retry_intervals
            delay = None if error.permanent else backoff(intervals, counted, error.retry_after)
            outcome = DEAD if delay is None else PENDING
            retry_in = 0 if delay is None else int(delay * 1000)
            step = outbox.DONE if delay is None else outbox.RETRY
            completion = outbox.Completion(step, health, retry_in, not_before, dead=delay is None)
        record |= {
            "outcome": "failed",
            "status_code": error.status_code,
            "error": str(error),
            "permanent": error.permanent,
        }
        fields |= {
            "status": DEAD if outcome == DEAD else PENDING,
            "failures": counted,
            "last_error": str(error),
            "last_status_code": error.status_code or "",
            "next_attempt_at": "" if delay is None else (now() + timedelta(seconds=delay)).isoformat(),
        }

    counters = outbox.Counters()
    telemetry.count(counters, "workhooks_deliveries", sink_name, DEAD if outcome == DEAD else record["outcome"])
    telemetry.observe(counters, "workhooks_delivery_seconds", duration / 1000, sink_name)
    telemetry.observe(counters, "workhooks_delivery_wait_seconds", taken.waited_ms / 1000, sink_name)
    if outcome == DELIVERED:
        telemetry.observe(counters, "workhooks_delivered_delay_seconds", seconds_since(event.time) or 0.0, sink_name)
    following = then() if then else None
    applied, transition = outbox.complete(connection, taken, key, completion, fields, _breaker(sink_name),
                                          json.dumps(record), counters, ATTEMPTS_KEPT, following)  # fmt: skip
    if transition:
        _breaker_moved(connection, sink_name, transition, str(error) if error else "")
    if outcome == DEAD and applied:  # a holder that had lost its lease announces nothing
        _announce_dead(connection, event, sink_name, taken.delivery_id, str(error))
    log.info(
        "delivery_attempt",
        source=event.source,
        type=event.type,
        attempt=attempt_number,
        outcome=record["outcome"],
        status_code=record["status_code"],
        error=record["error"],
        duration_ms=duration,
        next_attempt_in_s=None if delay is None else round(delay, 1),
        dead=outcome == DEAD,
        held=outcome == HELD,
        lease_lost=not applied,
    )
    return outcome


def _breaker_moved(connection: redis.Redis, sink_name: str, state: str, error: str) -> None:
    telemetry_key = "workhooks_sink_breaker_transitions"
    with connection.pipeline(transaction=False) as pipe:
        telemetry.count(pipe, telemetry_key, sink_name, state)
        pipe.execute()
    if state == outbox.OPEN:
        log.warning("sink_breaker_opened", reason="consecutive failures", last_error=error)
    else:
        log.info("sink_breaker_closed", reason="a delivery succeeded")


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
    """Send a dead (or dropped) delivery again, with a fresh retry schedule, after its subject's queued ones."""
    item = get(connection, item_id)
    if item is None:
        return "not found"
    if item.status == DELIVERED:
        return "already delivered"
    if item.status == PENDING:
        return "already pending"
    raw = connection.get(keys.event(item.event_id))
    if raw is None:
        return "event expired"
    event = Event.from_json(raw)
    if not outbox.enqueue(connection, item.sink, member(event), item_id, keys.delivery(item_id), outbox.REOPEN):
        return "already pending"
    return "queued"


def attempts(connection: redis.Redis, event_id: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in connection.lrange(keys.attempts(event_id), 0, -1)]
