"""`workhooks scheduler`: enqueue one poll per pull source every `poll_interval`.

Each source's next poll is gated by a Redis key set with NX and the interval as its TTL, so
running two schedulers (or restarting one) never polls a source twice in an interval; the poll
job itself holds a lease lock, so one source is never polled twice at once.
"""

from __future__ import annotations

import secrets
import threading

import redis
import structlog

from workhooks.config.schema import Config
from workhooks.store import jobs, keys

TICK = 1.0
log = structlog.get_logger("workhooks.scheduler")


def tick(connection: redis.Redis, config: Config) -> list[str]:
    """Enqueue the polls that are due now; returns their sources."""
    queue = jobs.queue(connection)
    enqueued = []
    for name, source in config.sources.items():
        interval = source.interval()
        if interval is None or connection.exists(keys.poll_backoff(name)):
            continue
        if connection.set(keys.poll_due(name), 1, nx=True, ex=interval):
            job_id = f"poll-{name}-{secrets.token_hex(4)}"
            job = jobs.create(queue, keys.POLL_SOURCE, keys.POLL, (name,), job_id, f"poll {name}",
                              timeout=keys.poll_timeout(source.timeout))  # fmt: skip
            queue.enqueue_job(job)
            enqueued.append(name)
    return enqueued


def run(connection: redis.Redis, config: Config, stop: threading.Event) -> None:
    pulled = [name for name, source in config.sources.items() if source.interval() is not None]
    log.info("scheduler_started", pull_sources=pulled)
    while not stop.is_set():
        try:
            tick(connection, config)
        except redis.RedisError as error:
            log.warning("scheduler_redis_unavailable", error=str(error)[:200])
        stop.wait(TICK)
