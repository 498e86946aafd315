"""GET /metrics: Prometheus gauges read from Redis when scraped.

They describe the whole deployment (the queue, dead letters, workers), so any one receiver can
be scraped for them and several processes never need to share counters. The worker HPA
(deploy/k8s/worker.yaml) scales on workhooks_queue_depth.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import redis.asyncio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.exceptions import RedisError
from rq.job import Job
from rq.queue import Queue
from rq.worker_registration import REDIS_WORKER_KEYS

from receiver import keys

QUEUE_KEY = Queue.redis_queue_namespace_prefix + keys.QUEUE
GAUGES = {
    "workhooks_redis_up": "1 when Redis answered this scrape",
    "workhooks_queue_depth": "jobs waiting in the workhooks queue (processing, deliveries, polls)",
    "workhooks_queue_oldest_age_seconds": "how long the job at the head of the queue has waited",
    "workhooks_dead_letters": "deliveries out of attempts or refused, awaiting replay",
    "workhooks_quarantined": "authenticated callbacks that could not be parsed",
    "workhooks_workers": "RQ workers registered",
    "workhooks_spool_depth": "callbacks in this receiver's spool, waiting for Redis",
}
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _age(enqueued_at: bytes | str | None, now: datetime) -> float:
    if not enqueued_at:
        return 0.0
    try:
        text = enqueued_at.decode() if isinstance(enqueued_at, bytes) else enqueued_at
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (now - at.replace(tzinfo=at.tzinfo or UTC)).total_seconds())


async def read(client: redis.asyncio.Redis, spool_depth: int) -> dict[str, float]:
    values: dict[str, float] = {"workhooks_redis_up": 0.0, "workhooks_spool_depth": float(spool_depth)}
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.llen(QUEUE_KEY)
            pipe.lindex(QUEUE_KEY, 0)
            pipe.zcard(keys.DEAD_INDEX)
            pipe.zcard(keys.QUARANTINE_INDEX)
            pipe.scard(REDIS_WORKER_KEYS)
            depth, head, dead, quarantined, workers = await pipe.execute()
        enqueued_at = await client.hget(Job.redis_job_namespace_prefix + head.decode(), "enqueued_at") if head else None
    except RedisError:
        return values
    return {
        **values,
        "workhooks_redis_up": 1.0,
        "workhooks_queue_depth": float(depth),
        "workhooks_queue_oldest_age_seconds": _age(enqueued_at, datetime.now(UTC)),
        "workhooks_dead_letters": float(dead),
        "workhooks_quarantined": float(quarantined),
        "workhooks_workers": float(workers),
    }


class _Snapshot:
    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def collect(self) -> Iterator[Metric]:
        for name, value in self.values.items():
            yield GaugeMetricFamily(name, GAUGES[name], value=value)


def render(values: dict[str, float]) -> bytes:
    """The Prometheus text exposition of one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(values))
    return generate_latest(registry)
