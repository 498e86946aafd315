"""Draining the inbox (receiver/inbox.py): one RQ job takes a batch of accepted events and processes each.

A drain job moves up to ``BATCH`` event ids from the inbox into its own claimed list, in one
script that also queues the next drain job when events are left, so idle workers join in, and
reads the events with one MGET. The claim is dropped when the batch is done. A drain job that
dies (SIGKILL, timeout, Redis gone) is run again by RQ under the same id and processes its claim
again first, which repeats nothing: each event is applied once, each first attempt made once.
An event whose processing raises (a platform API down) leaves the batch for a job of its own,
which RQ retries with backoff, so one bad event never holds up the rest.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import redis
import structlog
from rq import Queue
from rq.timeouts import BaseTimeoutException

from receiver import inbox, keys
from workers import processing

log = structlog.get_logger("workhooks.worker")

BATCH = 50
PROCESS_EVENT = "workers.jobs.process_event"
TIMEOUT_MARGIN = 3  # seconds of the job's timeout kept free for recording the last attempt
# Past half its time a drain job takes no new event from its batch: it gives the rest back, so an
# event that waits on a slow platform API cannot push the job past its timeout.
GIVE_BACK_AFTER = (inbox.PROCESS_TIMEOUT - TIMEOUT_MARGIN) / 2

# KEYS: queue_drain's four (for the next drain job), inbox, claimed. ARGV: this job's id, batch
# size, queue_drain's five.
_TAKE = (
    inbox.QUEUE_DRAIN
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
if redis.call('LLEN', KEYS[5]) > 0 then
  queue_drain(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
end
return taken
"""
)

# KEYS: queue_drain's four, inbox, claimed. ARGV: queue_drain's five, then the claimed events not
# processed yet: they go back to the head of the inbox, in order, and a drain job is queued for them.
_GIVE_BACK = (
    inbox.QUEUE_DRAIN
    + """
for i = #ARGV, 6, -1 do
  redis.call('LPUSH', KEYS[5], ARGV[i])
end
redis.call('DEL', KEYS[6])
queue_drain(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return #ARGV - 5
"""
)

_job = inbox.DrainJob()
# Built once (SHA1 computed once); called with the worker's connection: EVALSHA, loaded on demand.
_take = redis.Redis().register_script(_TAKE)
_give_back = redis.Redis().register_script(_GIVE_BACK)


def _next() -> tuple[list[str], list[Any]]:
    job_id = f"drain-{secrets.token_hex(8)}"
    return _job.keys(job_id), _job.args(job_id)


def take(connection: redis.Redis, job_id: str, batch: int = BATCH) -> list[str]:
    """This job's claimed events (left by an earlier run of it) and up to ``batch`` more from the inbox."""
    script_keys, args = _next()
    taken = _take(
        keys=[*script_keys, inbox.INBOX, inbox.claimed(job_id)], args=[job_id, batch, *args], client=connection
    )
    return [event_id.decode() for event_id in taken]


def give_back(connection: redis.Redis, job_id: str, left: list[str]) -> int:
    """Return ``left`` (claimed, not processed) to the head of the inbox and drop this job's claim."""
    script_keys, args = _next()
    given = _give_back(keys=[*script_keys, inbox.INBOX, inbox.claimed(job_id)], args=[*args, *left], client=connection)
    return int(given)


def hand_off(connection: redis.Redis, job_id: str, event_id: str) -> None:
    """Move an event whose processing failed out of the batch, into a job of its own that RQ retries."""
    queue = Queue(keys.QUEUE, connection=connection)
    job = queue.create_job(
        PROCESS_EVENT,
        args=(event_id,),
        job_id=event_id,
        description=f"process_event {event_id}",
        timeout=inbox.PROCESS_TIMEOUT,
        result_ttl=inbox.RESULT_TTL,
        failure_ttl=inbox.FAILURE_TTL,
        retry=inbox.PROCESS_RETRY,
    )
    with connection.pipeline(transaction=True) as pipe:
        pipe.multi()  # explicit: RQ's enqueue_job calls multi() itself otherwise, after our commands
        pipe.lrem(inbox.claimed(job_id), 1, event_id)
        queue.enqueue_job(job, pipeline=pipe)
        pipe.execute()


def deadline() -> float:
    """When a processing job that starts now must have made its last delivery attempt (monotonic)."""
    return time.monotonic() + inbox.PROCESS_TIMEOUT - TIMEOUT_MARGIN


def drain(connection: redis.Redis, job_id: str) -> int:
    """Process a batch from the inbox; the number of events processed (or handed off)."""
    started, ends = time.monotonic(), deadline()
    taken = take(connection, job_id)
    stored = connection.mget([keys.event(event_id) for event_id in taken]) if taken else []
    for index, (event_id, raw) in enumerate(zip(taken, stored, strict=True)):
        if time.monotonic() - started > GIVE_BACK_AFTER:
            given = give_back(connection, job_id, taken[index:])
            log.info("inbox_given_back", events=given, reason="half the job's time used")
            return index
        try:
            processing.process(connection, event_id, raw, ends)
        except BaseTimeoutException:
            raise
        except Exception:
            log.exception("event_failed", event_id=event_id, reason="retried in a job of its own")
            hand_off(connection, job_id, event_id)
    # Only now: a re-run after dying anywhere above processes the whole claim again, which repeats
    # nothing (each event is applied once, each first attempt made once).
    connection.delete(inbox.claimed(job_id))
    structlog.contextvars.clear_contextvars()
    return len(taken)
