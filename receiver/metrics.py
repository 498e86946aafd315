"""Prometheus metrics: GET /metrics on any receiver.

Three kinds, all rendered with prometheus-client:

- this receiver's own requests (callbacks by source and outcome, acknowledgement latency), kept
  in the process like any Prometheus client;
- what the workers do (events processed, deliveries by sink and outcome, latencies, polls):
  deployment-wide counters the workers keep in Redis (workhooks/store/telemetry.py);
- gauges read from Redis when scraped (workhooks/store/health.py): queue depth and age, dead
  letters, quarantine, workers, poll age; and this receiver's spool.

Scrape one receiver for the deployment (workers' series are the same on all of them), or all
of them and aggregate the request series; dashboards in deploy/grafana/ use max() for the former.

Several receiver processes on one port (`workhooks serve --workers N`) are one receiver to a scraper,
which reaches whichever process accepts: there the request series are kept in prometheus-client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `workhooks serve`, one file per process) and every
scrape adds up all the processes'.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from workhooks.store import outbox
from workhooks.store.health import Health
from workhooks.store.telemetry import BUCKETS, COUNTERS, HISTOGRAMS

CONTENT_TYPE = CONTENT_TYPE_LATEST
GAUGES = {
    "workhooks_redis_up": "1 when Redis answered this scrape",
    "workhooks_queue_depth": "events in the inbox plus jobs in the queue (drains, polls)",
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


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client reads it when imported
_counted: dict[tuple[str, str], Counter] = {}
_timed: dict[str, Histogram] = {}


def record_callback(source: str, outcome: str, seconds: float) -> None:
    """One callback request (the receiver's request log calls this); unknown sources are 'unknown'."""
    counter = _counted.get((source, outcome))
    if counter is None:  # a label lookup per request is a lock and a tuple of str(): once per pair instead
        counter = _counted[source, outcome] = CALLBACKS.labels(source, outcome)
    histogram = _timed.get(source)
    if histogram is None:
        histogram = _timed[source] = ACK_SECONDS.labels(source)
    counter.inc()
    histogram.observe(seconds)


def _receiver_text() -> bytes:
    """This receiver's own series: this process's, or every process's of a multi-process receiver."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return generate_latest(RECEIVER)
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _worker_families(counters: dict[str, list[tuple[list[str], float]]]) -> Iterator[Metric]:
    for name, (documentation, label_names) in COUNTERS.items():
        counter = CounterMetricFamily(name, documentation, labels=label_names)
        for labels, value in sorted(counters.get(name, [])):
            counter.add_metric(labels, value)
        yield counter
    for name, (documentation, label_names) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, documentation, labels=label_names)
        sums = {tuple(labels): value for labels, value in counters.get(f"{name}_sum", [])}
        buckets: dict[tuple[str, ...], dict[str, float]] = {}
        for labels, value in counters.get(f"{name}_bucket", []):
            buckets.setdefault(tuple(labels[:-1]), {})[labels[-1]] = value
        for labels_key, counts in sorted(buckets.items()):
            cumulative, rows = 0.0, []
            for bound in [*map(str, BUCKETS), "+Inf"]:
                cumulative += counts.get(bound, 0.0)
                rows.append((bound, cumulative))
            family.add_metric(list(labels_key), rows, sums.get(labels_key, 0.0))
        yield family


SINK_STATES = {outbox.CLOSED: 0.0, outbox.HALF_OPEN: 1.0, outbox.OPEN: 2.0}
SINK_GAUGES = {
    "workhooks_sink_breaker_state": "a sink's circuit breaker: 0 closed, 1 half-open (probing), 2 open",
    "workhooks_sink_paused": "1 while a sink is paused (workhooks sinks pause)",
    "workhooks_sink_held": "deliveries queued for a sink, the ones in flight included",
    "workhooks_sink_in_flight": "deliveries being attempted now, across every worker",
}


def _sink_families(health: Health | None) -> Iterator[Metric]:
    families = {name: GaugeMetricFamily(name, text, labels=("sink",)) for name, text in SINK_GAUGES.items()}
    for sink, state in sorted((health.sinks if health else {}).items()):
        families["workhooks_sink_breaker_state"].add_metric([sink], SINK_STATES.get(state.state, 0.0))
        families["workhooks_sink_paused"].add_metric([sink], float(state.paused))
        families["workhooks_sink_held"].add_metric([sink], float(state.held))
        families["workhooks_sink_in_flight"].add_metric([sink], float(state.in_flight))
    yield from families.values()


class _Collector:
    def __init__(self, health: Health | None, spool_depth: int) -> None:
        self.health, self.spool_depth = health, spool_depth

    def collect(self) -> Iterator[Metric]:
        health = self.health
        gauges = {
            "workhooks_redis_up": 0.0 if health is None else 1.0,
            "workhooks_spool_depth": float(self.spool_depth),
        }
        if health is not None:
            gauges |= {
                "workhooks_queue_depth": float(health.queue_depth),
                "workhooks_queue_oldest_age_seconds": health.oldest_age or 0.0,
                "workhooks_dead_letters": float(health.dead_letters),
                "workhooks_quarantined": float(health.quarantined),
                "workhooks_workers": float(health.workers),
            }
        for name, value in gauges.items():
            yield GaugeMetricFamily(name, GAUGES[name], value=value)
        poll_age = GaugeMetricFamily(
            "workhooks_poll_age_seconds", "since a pull source was last polled successfully", labels=("source",)
        )
        for source, poll in sorted((health.polls if health else {}).items()):
            if poll.age is not None:
                poll_age.add_metric([source], poll.age)
        yield poll_age
        yield from _sink_families(health)
        if health is not None:
            yield from _worker_families(health.counters)


def render(health: Health | None, spool_depth: int) -> bytes:
    """The Prometheus text exposition (``health`` None: Redis did not answer), then this receiver's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(health, spool_depth))
    return generate_latest(registry) + _receiver_text()
