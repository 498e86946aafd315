"""RQ jobs as workhooks queues them: one queue, options from keys.py, and enqueue-inside-a-transaction.

Every job is queued in the same MULTI as the Redis writes that need it (a delivery marked
queued, a dead letter un-marked, an event moved out of a batch), so neither happens without
the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import redis
from rq import Queue
from rq.job import Job

from workhooks.store import keys


def queue(connection: redis.Redis) -> Queue:
    return Queue(keys.QUEUE, connection=connection)


def create(
    target: Queue,
    path: str,
    options: keys.JobOptions,
    args: Sequence[Any],
    job_id: str,
    description: str,
    timeout: int | None = None,
) -> Job:
    """A job for ``path`` with ids as arguments (never payloads or secrets: RQ stores and logs them)."""
    return target.create_job(
        path,
        args=tuple(args),
        job_id=job_id,
        description=description,
        timeout=timeout or options.timeout,
        result_ttl=options.result_ttl,
        failure_ttl=options.failure_ttl,
        retry=options.retry,
    )


def enqueue_with(connection: redis.Redis, job: Job, writes: Callable[[Any], None], at: datetime | None = None) -> None:
    """Queue ``job`` (or schedule it ``at`` a time) in one transaction with ``writes(pipe)``."""
    target = queue(connection)
    with connection.pipeline(transaction=True) as pipe:
        pipe.multi()  # explicit: RQ's enqueue_job calls multi() itself otherwise, after our commands
        writes(pipe)
        if at is None:
            target.enqueue_job(job, pipeline=pipe)
        else:
            target.schedule_job(job, at, pipe)
        pipe.execute()
