"""What workers count: added to one Redis hash inside the transactions they already make.

Workers run anywhere and serve no HTTP, so no extra round trip and no per-process state: any
number of processes on any number of hosts add to the same deployment-wide totals, which every
receiver reports at /metrics (receiver/metrics.py).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from workhooks.store import keys

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
SEPARATOR = "|"

# name -> help, label names
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "workhooks_events_processed": ("events applied to their job/task state", ("source", "type")),
    "workhooks_deliveries": ("delivery attempts by outcome: delivered, failed (will retry), dead", ("sink", "outcome")),
    "workhooks_polls": ("polls of a pull source by outcome", ("source", "outcome")),
    "workhooks_mismatches": ("status callbacks the platform's own API contradicted (confirm: true)", ("source",)),
    "workhooks_resends_recognised": ("messages the platform's records show announced already", ("source",)),
    "workhooks_unknown_statuses": ("events with a status their platform's document does not name", ("source",)),
    "workhooks_derived_events": ("events workhooks derived: reminders, deadlines, account, delivery", ("type",)),
    "workhooks_actions": (
        "actions people took on subjects, by outcome: done, failed, unknown, refused",
        ("source", "action", "outcome"),
    ),
    "workhooks_sink_breaker_transitions": ("a sink's circuit breaker opened or closed", ("sink", "state")),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "workhooks_processing_delay_seconds": ("from callback accepted to event processed", ("source",)),
    "workhooks_delivery_seconds": ("one delivery attempt: the sink's answer time", ("sink",)),
    "workhooks_delivered_delay_seconds": ("from callback accepted to delivered at the sink", ("sink",)),
    "workhooks_delivery_wait_seconds": (
        "from a delivery due to its attempt: the wait for the sink's rate, slots, pause or breaker",
        ("sink",),
    ),
}


def _field(name: str, labels: Iterable[str]) -> str:
    return SEPARATOR.join([name, *(label.replace(SEPARATOR, "/") for label in labels)])


def count(pipe: Any, name: str, *labels: str) -> None:
    """Add one to a worker counter inside the caller's pipeline or transaction."""
    assert name in COUNTERS and len(labels) == len(COUNTERS[name][1])
    pipe.hincrby(keys.WORKER_COUNTERS, _field(name, labels), 1)


def observe(pipe: Any, name: str, seconds: float, *labels: str) -> None:
    """Record one observation of a worker histogram inside the caller's pipeline (3 commands)."""
    assert name in HISTOGRAMS and len(labels) == len(HISTOGRAMS[name][1])
    index = bisect.bisect_left(BUCKETS, seconds)
    bucket = str(BUCKETS[index]) if index < len(BUCKETS) else "+Inf"
    pipe.hincrby(keys.WORKER_COUNTERS, _field(f"{name}_bucket", [*labels, bucket]), 1)
    pipe.hincrby(keys.WORKER_COUNTERS, _field(f"{name}_count", labels), 1)
    pipe.hincrbyfloat(keys.WORKER_COUNTERS, _field(f"{name}_sum", labels), max(0.0, seconds))


def split(counters: dict[Any, Any]) -> dict[str, list[tuple[list[str], float]]]:
    """The counter hash as read back: name -> [(label values, value)]."""
    by_name: dict[str, list[tuple[list[str], float]]] = {}
    for key, value in counters.items():
        name, *labels = (key.decode() if isinstance(key, bytes) else str(key)).split(SEPARATOR)
        by_name.setdefault(name, []).append((labels, float(value)))
    return by_name
