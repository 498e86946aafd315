"""Prometheus metrics: GET /metrics on any receiver.

Three kinds, all rendered with prometheus-client:

- this receiver's own requests (callbacks by source and outcome, acknowledgement latency), kept
  in the process like any Prometheus client;
- what the workers do (events processed, deliveries by sink and outcome, latencies, polls):
  workers run anywhere and serve no HTTP, so they add to counters in one Redis hash inside the
  transactions they already make — no extra round trip, safe for any number of processes on any
  number of hosts — and every receiver reports the deployment-wide totals;
- gauges read from Redis when scraped: queue depth and age, dead letters, quarantine, workers,
  poll age, and this receiver's spool.

Scrape one receiver for the deployment (workers' series are the same on all of them), or all
of them and aggregate the request series; dashboards in deploy/grafana/ use max() for the former.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis.exceptions import RedisError
from rq.job import Job
from rq.queue import Queue
from rq.worker_registration import REDIS_WORKER_KEYS

from receiver import inbox, keys

CONTENT_TYPE = CONTENT_TYPE_LATEST
QUEUE_KEY = Queue.redis_queue_namespace_prefix + keys.QUEUE
WORKER_COUNTERS = keys.PREFIX + "metrics"  # hash: "<name>|<label value>|..." -> count
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
SEPARATOR = "|"

# Recorded by workers (name -> help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "workhooks_events_processed": ("events applied to their job/task state", ("source", "type")),
    "workhooks_deliveries": ("delivery attempts by outcome: delivered, failed (will retry), dead", ("sink", "outcome")),
    "workhooks_polls": ("polls of a pull source by outcome", ("source", "outcome")),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "workhooks_processing_delay_seconds": ("from callback accepted to event processed", ("source",)),
    "workhooks_delivery_seconds": ("one delivery attempt: the sink's answer time", ("sink",)),
    "workhooks_delivered_delay_seconds": ("from callback accepted to delivered at the sink", ("sink",)),
}
GAUGES = {
    "workhooks_redis_up": "1 when Redis answered this scrape",
    "workhooks_queue_depth": "events in the inbox plus jobs in the queue (drains, deliveries, polls)",
    "workhooks_queue_oldest_age_seconds": "how long the job at the head of the queue has waited",
    "workhooks_dead_letters": "deliveries out of attempts or refused, awaiting replay",
    "workhooks_quarantined": "authenticated callbacks that could not be parsed",
    "workhooks_workers": "RQ workers registered",
    "workhooks_spool_depth": "callbacks in this receiver's spool, waiting for Redis",
}

RECEIVER = CollectorRegistry(auto_describe=True)
CALLBACKS = Counter(
    "workhooks_callbacks", "callbacks received, by source and outcome", ("source", "outcome"), registry=RECEIVER
)
ACK_SECONDS = Histogram(
    "workhooks_ack_seconds",
    "from request start to the acknowledgement",
    ("source",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=RECEIVER,
)


def record_callback(source: str, outcome: str, seconds: float) -> None:
    """One callback request (the receiver's request log calls this); unknown sources are 'unknown'."""
    CALLBACKS.labels(source, outcome).inc()
    ACK_SECONDS.labels(source).observe(seconds)


def _field(name: str, labels: Iterable[str]) -> str:
    return SEPARATOR.join([name, *(label.replace(SEPARATOR, "/") for label in labels)])


def count(pipe: Any, name: str, *labels: str) -> None:
    """Add one to a worker counter inside the caller's pipeline or transaction."""
    assert name in COUNTERS and len(labels) == len(COUNTERS[name][1])
    pipe.hincrby(WORKER_COUNTERS, _field(name, labels), 1)


def observe(pipe: Any, name: str, seconds: float, *labels: str) -> None:
    """Record one observation of a worker histogram inside the caller's pipeline (3 commands)."""
    assert name in HISTOGRAMS and len(labels) == len(HISTOGRAMS[name][1])
    index = bisect.bisect_left(BUCKETS, seconds)
    bucket = str(BUCKETS[index]) if index < len(BUCKETS) else "+Inf"
    pipe.hincrby(WORKER_COUNTERS, _field(f"{name}_bucket", [*labels, bucket]), 1)
    pipe.hincrby(WORKER_COUNTERS, _field(f"{name}_count", labels), 1)
    pipe.hincrbyfloat(WORKER_COUNTERS, _field(f"{name}_sum", labels), max(0.0, seconds))


def seconds_since(iso_time: str | bytes | None, now: datetime | None = None) -> float | None:
    if not iso_time:
        return None
    text = iso_time.decode() if isinstance(iso_time, bytes) else iso_time
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds())


def ask_backlog(pipe: Any) -> None:
    """Queue on ``pipe`` (sync or async) the reads of the backlog: queue length and head, inbox
    length and head — four replies, in that order."""
    pipe.llen(QUEUE_KEY)
    pipe.lindex(QUEUE_KEY, 0)
    pipe.llen(inbox.INBOX)
    pipe.lindex(inbox.INBOX, 0)


def ask_heads(pipe: Any, head: bytes | None, first: bytes | None) -> None:
    """Queue on ``pipe`` the reads ``oldest_age`` needs for the heads ``ask_backlog`` returned."""
    pipe.hget(Job.redis_job_namespace_prefix + (head or b"-").decode(), "enqueued_at")
    pipe.zscore(keys.EVENTS_INDEX, first or b"-")


def oldest_age(enqueued_at: bytes | None, received: float | None) -> float | None:
    """The longer wait of the job at the head of the queue (RQ's enqueued_at) and the event at the
    head of the inbox (its received time, a Unix time)."""
    ages = [seconds_since(enqueued_at), None if received is None else max(0.0, time.time() - received)]
    known = [age for age in ages if age is not None]
    return max(known) if known else None


@dataclass
class Snapshot:
    gauges: dict[str, float]
    worker_counters: dict[str, float] = field(default_factory=dict)
    poll_age: dict[str, float] = field(default_factory=dict)


async def read(client: redis.asyncio.Redis, spool_depth: int, sources: Iterable[str] = ()) -> Snapshot:
    sources = list(sources)
    snapshot = Snapshot({"workhooks_redis_up": 0.0, "workhooks_spool_depth": float(spool_depth)})
    try:
        async with client.pipeline(transaction=False) as pipe:
            ask_backlog(pipe)
            pipe.zcard(keys.DEAD_INDEX)
            pipe.zcard(keys.QUARANTINE_INDEX)
            pipe.scard(REDIS_WORKER_KEYS)
            pipe.hgetall(WORKER_COUNTERS)
            for name in sources:
                pipe.hget(keys.poll_status(name), "last_ok_at")
            depth, head, waiting, first, dead, quarantined, workers, counters, *polled = await pipe.execute()
        async with client.pipeline(transaction=False) as pipe:
            ask_heads(pipe, head, first)
            enqueued_at, received = await pipe.execute()
    except RedisError:
        return snapshot
    snapshot.gauges |= {
        "workhooks_redis_up": 1.0,
        "workhooks_queue_depth": float(depth + waiting),
        "workhooks_queue_oldest_age_seconds": oldest_age(enqueued_at, received) or 0.0,
        "workhooks_dead_letters": float(dead),
        "workhooks_quarantined": float(quarantined),
        "workhooks_workers": float(workers),
    }
    snapshot.worker_counters = {key.decode(): float(value) for key, value in counters.items()}
    snapshot.poll_age = {
        name: age for name, at in zip(sources, polled, strict=True) if (age := seconds_since(at)) is not None
    }
    return snapshot


def _worker_families(counters: dict[str, float]) -> Iterator[Metric]:
    by_name: dict[str, list[tuple[list[str], float]]] = {}
    for key, value in counters.items():
        name, *labels = key.split(SEPARATOR)
        by_name.setdefault(name, []).append((labels, value))
    for name, (documentation, label_names) in COUNTERS.items():
        counter = CounterMetricFamily(name, documentation, labels=label_names)
        for labels, value in sorted(by_name.get(name, [])):
            counter.add_metric(labels, value)
        yield counter
    for name, (documentation, label_names) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, documentation, labels=label_names)
        sums = {tuple(labels): value for labels, value in by_name.get(f"{name}_sum", [])}
        buckets: dict[tuple[str, ...], dict[str, float]] = {}
        for labels, value in by_name.get(f"{name}_bucket", []):
            buckets.setdefault(tuple(labels[:-1]), {})[labels[-1]] = value
        for labels_key, counts in sorted(buckets.items()):
            cumulative, rows = 0.0, []
            for bound in [*map(str, BUCKETS), "+Inf"]:
                cumulative += counts.get(bound, 0.0)
                rows.append((bound, cumulative))
            family.add_metric(list(labels_key), rows, sums.get(labels_key, 0.0))
        yield family


class _Collector:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        for name, value in self.snapshot.gauges.items():
            yield GaugeMetricFamily(name, GAUGES[name], value=value)
        poll_age = GaugeMetricFamily(
            "workhooks_poll_age_seconds", "since a pull source was last polled successfully", labels=("source",)
        )
        for source, age in sorted(self.snapshot.poll_age.items()):
            poll_age.add_metric([source], age)
        yield poll_age
        if self.snapshot.gauges["workhooks_redis_up"]:
            yield from _worker_families(self.snapshot.worker_counters)


def render(snapshot: Snapshot) -> bytes:
    """The Prometheus text exposition: this snapshot, then this receiver's own request metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshot))
    return generate_latest(registry) + generate_latest(RECEIVER)
