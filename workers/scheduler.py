"""`workhooks scheduler`: enqueue one poll per pull source every `poll_interval`, one balance check per
watched account every `account_interval`, and evaluate reminders and deadlines about once a second.

Each source's next poll is gated by a Redis key set with NX and the interval as its TTL, so
running two schedulers (or restarting one) never polls a source twice in an interval; the poll
job itself holds a lease lock, so one source is never polled twice at once. Reminders and
deadlines are gated the same way (WATCH_DUE); were two evaluations to overlap, their events'
ids are the same and ingest takes each once.
"""

from __future__ import annotations

import secrets
import threading
import time

import redis
import structlog

from workers import watch
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
    for name, source in config.sources.items():
        watched = source.balance_threshold()
        if watched is not None and connection.set(keys.account_due(name), 1, nx=True, ex=watched[1]):
            job = jobs.create(queue, keys.CHECK_ACCOUNT, keys.POLL, (name,), f"account-{name}-{secrets.token_hex(4)}",
                              f"check account {name}", timeout=keys.poll_timeout(source.timeout))  # fmt: skip
            queue.enqueue_job(job)
    if connection.set(keys.WATCH_DUE, 1, nx=True, px=keys.WATCH_DUE_MS):
        watch.evaluate(connection, config, time.time())
    return enqueued


def run(connection: redis.Redis, config: Config, stop: threading.Event) -> None:
    pulled = [name for name, source in config.sources.items() if source.interval() is not None]
    log.info("scheduler_started", pull_sources=pulled)
    while not stop.is_set():
        try:
            tick(connection, config)
        except redis.RedisError as error:
            log.warning("scheduler_redis_unavailable", error=str(error)[:200])
        except Exception:  # a bug must not stop polls and reminders for good: log it, tick again
            log.exception("scheduler_tick_failed")
        stop.wait(TICK)
