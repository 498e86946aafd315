"""The inbox: accepted events waiting to be processed, and the RQ jobs that drain it.

Each accepted event goes onto one Redis list instead of becoming an RQ job of its own. A drain
job is queued when the first event arrives and none is waiting yet (a flag says so); the worker
that runs it takes everything waiting, up to a batch, and queues the next drain job if more is
left, so any number of workers share a backlog. RQ's bookkeeping (about twenty round trips and
most of a worker's CPU per job) is then paid per batch, not per event, and under a burst the
batches grow by themselves.

Receiver and workers both queue drain jobs, from Lua: ``QUEUE_DRAIN`` is the shared function,
and ``DrainJob`` the RQ job hash it writes, built once from RQ's own ``Job.to_dict``.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from rq import Queue, Retry
from rq.utils import now, utcformat

from receiver import keys

INBOX = keys.PREFIX + "inbox"  # event ids, oldest first
DRAIN_QUEUED = keys.PREFIX + "inbox:queued"  # the id of the drain job waiting in the queue, if one is
DRAIN_QUEUED_TTL = 60  # a lost drain job (an emptied queue) is replaced by the next arrival after this
DRAIN_INBOX = "workers.jobs.drain_inbox"  # enqueued by path: receiver never imports workers
PROCESS_TIMEOUT = 20
PROCESS_RETRY = Retry(max=6, interval=[0, 5, 30, 120, 600, 3600])  # first: at once, see workers/delivery.py
RESULT_TTL = 600
FAILURE_TTL = 365 * 24 * 3600


def claimed(job_id: str) -> str:
    """The events a drain job took and has not finished; a re-run of the job finishes them."""
    return f"{INBOX}:claimed:{job_id}"


# Keys: the flag, the job, the queue, RQ's set of queues. Args: the job id, the constant job fields
# as JSON, RQ's serialized call (bytes, so not in the JSON), now, the flag's ttl.
QUEUE_DRAIN = """
local function queue_drain(flag, job_key, queue_key, queues_key, job_id, constant, data, stamp, ttl)
  if not redis.call('SET', flag, job_id, 'NX', 'EX', ttl) then
    return 0
  end
  local job = {'data', data, 'created_at', stamp, 'enqueued_at', stamp}
  for field, value in pairs(cjson.decode(constant)) do
    job[#job + 1] = field
    job[#job + 1] = value
  end
  redis.call('HSET', job_key, unpack(job))
  redis.call('RPUSH', queue_key, job_id)
  redis.call('SADD', queues_key, queue_key)
  return 1
end
"""


class DrainJob:
    """RQ's job hash for a drain job, as a template: only its id and times differ from one to the next."""

    SEPARATE_FIELDS = ("data", "created_at", "enqueued_at")

    def __init__(self, queue_name: str = keys.QUEUE) -> None:
        self.queue = Queue(queue_name, connection=redis.Redis())  # a template: never used to talk to Redis
        template = self.rq_job_hash("drain-template")
        self.data = template["data"]
        constant = {k: v for k, v in template.items() if k not in self.SEPARATE_FIELDS}
        # As redis-py would encode them: a str subclass (RQ's JobStatus) by its value, not its str().
        self.constant = json.dumps(
            {k: v.encode().decode() if isinstance(v, str) else str(v) for k, v in constant.items()}
        )

    def rq_job_hash(self, job_id: str) -> dict[str, Any]:
        """The hash RQ itself would store for this drain job (the reference format)."""
        job = self.queue.create_job(
            DRAIN_INBOX,
            job_id=job_id,
            description="drain the inbox",
            timeout=PROCESS_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
            retry=PROCESS_RETRY,
        )
        job.enqueued_at = now()  # what Queue.enqueue_job would set
        fields: dict[str, Any] = job.to_dict()
        return fields

    def keys(self, job_id: str) -> list[str]:
        """KEYS for ``queue_drain``: the flag, the job, the queue, RQ's set of queues."""
        return [DRAIN_QUEUED, self.queue.job_class.key_for(job_id), self.queue.key, self.queue.redis_queues_keys]

    def args(self, job_id: str) -> list[Any]:
        """ARGV for ``queue_drain``: the job id, the constant fields, the call, the time, the flag's ttl."""
        return [job_id, self.constant, self.data, utcformat(now()), DRAIN_QUEUED_TTL]
