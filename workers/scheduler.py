"""`workhooks scheduler`: enqueue one poll per pull source every `poll_interval`.

Each source's next poll is gated by a Redis key set with NX and the interval as its TTL, so
running two schedulers (or restarting one) never polls a source twice in an interval; the poll
job itself holds a lease lock, so one source is never polled twice at once.
"""

from __future__ import annotations

import threading

import redis
import structlog
from rq import Queue

from receiver import keys
from receiver.config import Config, poll_interval_of
from workers.polling import backoff_key

POLL_SOURCE = "workers.jobs.poll_source"
TICK = 1.0
log = structlog.get_logger("workhooks.scheduler")


def due_key(name: str) -> str:
    return f"{keys.PREFIX}poll:due:{name}"


def tick(connection: redis.Redis, config: Config) -> list[str]:
    """Enqueue the polls that are due now; returns their sources."""
    queue = Queue(keys.QUEUE, connection=connection)
    enqueued = []
    for name, source in config.sources.items():
        interval = poll_interval_of(source)
        if interval is None or connection.exists(backoff_key(name)):
            continue
        if connection.set(due_key(name), 1, nx=True, ex=interval):
            queue.enqueue(
                POLL_SOURCE,
                name,
                description=f"poll {name}",
                job_timeout=max(120, int(getattr(source, "timeout", 15) * 20)),
                result_ttl=60,
                failure_ttl=24 * 3600,
            )
            enqueued.append(name)
    return enqueued


def run(connection: redis.Redis, config: Config, stop: threading.Event) -> None:
    pulled = [name for name, source in config.sources.items() if poll_interval_of(source) is not None]
    log.info("scheduler_started", pull_sources=pulled)
    while not stop.is_set():
        try:
            tick(connection, config)
        except redis.RedisError as error:
            log.warning("scheduler_redis_unavailable", error=str(error)[:200])
        stop.wait(TICK)
