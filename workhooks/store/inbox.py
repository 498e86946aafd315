"""The inbox: accepted events waiting to be processed, and the RQ jobs that drain it.

Each accepted event goes onto one Redis list instead of becoming an RQ job of its own. A drain
job is queued when the first event arrives and none is waiting yet (a flag says so); the worker
that runs it takes everything waiting, up to a batch, and queues the next drain job if more is
left, so any number of workers share a backlog. RQ's bookkeeping (about twenty round trips and
most of a worker's CPU per job) is then paid per batch, not per event, and under a burst the
batches grow by themselves. A drain job that found events looks again when done with them, for up to
a second (workers/inbox.py), holding the flag meanwhile, so at a steady moderate rate one job drains
many small batches instead of one job being queued per callback. The hold lasts DRAIN_HOLD_MS at most, and
``sweep`` (every worker, every few seconds) queues a job for events nobody is coming for.

Receiver and workers both queue drain jobs, from Lua: ``QUEUE_DRAIN`` is the shared function,
and ``DrainJob`` the RQ job hash it writes, built once from RQ's own ``Job.to_dict``; ``take``
and ``give_back`` are a drain job's claim on the inbox (workers/inbox.py runs the batch).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis
from rq import Queue
from rq.utils import now, utcformat

from workhooks.store import jobs, keys, scripts

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
        job = jobs.create(self.queue, keys.DRAIN_INBOX, keys.PROCESSING, (), job_id, "drain the inbox")
        job.enqueued_at = now()  # what Queue.enqueue_job would set
        fields: dict[str, Any] = job.to_dict()
        return fields

    def keys(self, job_id: str) -> list[str]:
        """KEYS for ``queue_drain``: the flag, the job, the queue, RQ's set of queues."""
        return [keys.DRAIN_QUEUED, keys.rq_job(job_id), self.queue.key, self.queue.redis_queues_keys]

    def args(self, job_id: str) -> list[Any]:
        """ARGV for ``queue_drain``: the job id, the constant fields, the call, the time, the flag's ttl."""
        return [job_id, self.constant, self.data, utcformat(now()), keys.DRAIN_QUEUED_TTL]


# KEYS: queue_drain's four (for the next drain job), inbox, claimed. ARGV: this job's id, batch
# size, queue_drain's five, then whether to hold the flag (1/0), how many taken call in another worker,
# and the hold's ttl (ms). The flag this job held (queued, or holding) is dropped first. Then, if events are
# left or the batch was large, the next drain job is queued so an idle worker joins in; else a job that
# took something and will look again holds the flag itself, so the callbacks arriving meanwhile do not
# queue a drain job each (RQ's bookkeeping per job is most of a worker's CPU at a moderate rate) but wait
# for its next take. A take that finds nothing holds nothing: the next arrival queues a job.
_TAKE = (
    QUEUE_DRAIN
    + """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
local taken = redis.call('LRANGE', KEYS[6], 0, -1)
for _ = #taken + 1, tonumber(ARGV[2]) do
  local id = redis.call('LMOVE', KEYS[5], KEYS[6], 'LEFT', 'RIGHT')
  if not id then
    break
  end
  taken[#taken + 1] = id
end
if redis.call('LLEN', KEYS[5]) > 0 or #taken >= tonumber(ARGV[9]) then
  queue_drain(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
elseif ARGV[8] == '1' and #taken > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[10])
end
return taken
"""
)

# KEYS: queue_drain's four, inbox, claimed. ARGV: this job's id, queue_drain's five, then the claimed
# events not processed yet: they go back to the head of the inbox, in order, the flag this job held is
# dropped and a drain job is queued for them.
_GIVE_BACK = (
    QUEUE_DRAIN
    + """
for i = #ARGV, 7, -1 do
  redis.call('LPUSH', KEYS[5], ARGV[i])
end
redis.call('DEL', KEYS[6])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
queue_drain(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return #ARGV - 6
"""
)

HELP_AT = 8  # a take of this many events (more arrive than one worker handles at once): another drain job is queued

# KEYS: queue_drain's four, inbox. ARGV: queue_drain's five. Events waiting and no drain job queued nor
# holding the flag (its holder died, or a batch outlived its hold): one is queued for them.
_SWEEP = (
    QUEUE_DRAIN
    + """
if redis.call('LLEN', KEYS[5]) == 0 then
  return 0
end
return queue_drain(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)

_job = DrainJob()
# Built once (SHA1 computed once); called with the worker's connection: EVALSHA, loaded on demand.
_take = scripts.Script(_TAKE)
_give_back = scripts.Script(_GIVE_BACK)
_sweep = scripts.Script(_SWEEP)


def _next() -> tuple[list[str], list[Any]]:
    job_id = f"drain-{secrets.token_hex(8)}"
    return _job.keys(job_id), _job.args(job_id)


def take(connection: redis.Redis, job_id: str, batch: int, hold: bool = False) -> list[str]:
    """This job's claimed events (left by an earlier run of it) and up to ``batch`` more from the inbox.
    ``hold``: it will take again when done with these, so what arrives meanwhile waits for it (``_TAKE``)."""
    script_keys, args = _next()
    args = [job_id, batch, *args, int(hold), HELP_AT, keys.DRAIN_HOLD_MS]
    taken = _take(keys=[*script_keys, keys.INBOX, keys.claimed(job_id)], args=args, client=connection)
    return [event_id.decode() for event_id in taken]


def give_back(connection: redis.Redis, job_id: str, left: list[str]) -> int:
    """Return ``left`` (claimed, not processed) to the head of the inbox and drop this job's claim."""
    script_keys, args = _next()
    script_keys += [keys.INBOX, keys.claimed(job_id)]
    given = _give_back(keys=script_keys, args=[job_id, *args, *left], client=connection)
    return int(given)


def sweep(connection: redis.Redis) -> bool:
    """Queue a drain job if events wait and none is queued or holding the flag; whether one was queued."""
    script_keys, args = _next()
    return bool(_sweep(keys=[*script_keys, keys.INBOX], args=args, client=connection))
