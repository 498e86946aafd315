"""The worker class `workhooks worker` runs.

RQ's SimpleWorker (no fork per job: ~3.5x the forking Worker's throughput here) never
renews a job's lease while running it, and by default leases min(timeout, 30 s) + 60 s —
so a slow delivery could be taken for abandoned and run twice, while a killed worker's job
waits ~90 s plus a maintenance pass. Leasing exactly the job's timeout plus a grace fixes
both: a job is never reclaimed before it could have timed out, and is reclaimed right after.
"""

from __future__ import annotations

import os

from rq.job import Job
from rq.worker import SimpleWorker

HEARTBEAT_GRACE = 10
DEFAULT_JOB_TIMEOUT = 180
DEFAULT_MAINTENANCE_INTERVAL = 30


def maintenance_interval() -> int:
    """How often a worker looks for jobs abandoned by a dead worker (WORKHOOKS_MAINTENANCE_INTERVAL)."""
    return int(os.environ.get("WORKHOOKS_MAINTENANCE_INTERVAL", DEFAULT_MAINTENANCE_INTERVAL))


def worker_ttl(interval: int) -> int:
    """An idle worker blocks in BLPOP for worker_ttl - 15 s and only then runs maintenance: match the interval."""
    return interval + 15


class Worker(SimpleWorker):
    def get_heartbeat_ttl(self, job: Job) -> int:
        timeout = job.timeout if job.timeout and job.timeout > 0 else DEFAULT_JOB_TIMEOUT
        return int(timeout) + HEARTBEAT_GRACE
