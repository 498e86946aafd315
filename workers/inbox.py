"""Draining the inbox (workhooks/store/inbox.py): one RQ job takes batches of accepted events and processes each.

A drain job moves up to ``BATCH`` event ids from the inbox into its own claimed list, in one
script that also queues the next drain job when events are left (or the batch was large), so idle
workers join in, and reads the events with one MGET. The claim is dropped when the batch is done;
then, for up to ``LINGER`` seconds of the job, it takes again (holding the inbox's flag in between,
so the callbacks arriving meanwhile wait for it instead of each queueing a job), and ends at the
first take that finds nothing. A drain job that
dies (SIGKILL, timeout, Redis gone) is run again by RQ under the same id and processes its claim
again first, which repeats nothing: each event is applied once, with its deliveries queued.
An event whose processing raises (a platform API down) leaves the batch for a job of its own,
which RQ retries with backoff, so one bad event never holds up the rest.
"""

from __future__ import annotations

import time

import redis
import structlog
from rq.timeouts import BaseTimeoutException

from workers import processing
from workhooks.core.logs import CachedLogger
from workhooks.store import inbox, jobs, keys

log = CachedLogger("workhooks.worker")

BATCH = 50
LINGER = 1.0  # seconds a drain job keeps taking new batches (an action or a poll queued behind it waits this long)
TIMEOUT_MARGIN = 3  # seconds of the job's timeout kept free
# Past half its time a drain job takes no new event from its batch: it gives the rest back, so an
# event that waits on a slow platform API cannot push the job past its timeout.
GIVE_BACK_AFTER = (keys.PROCESSING.timeout - TIMEOUT_MARGIN) / 2


def hand_off(connection: redis.Redis, job_id: str, event_id: str) -> None:
    """Move an event whose processing failed out of the batch, into a job of its own that RQ retries."""
    job = jobs.create(
        jobs.queue(connection), keys.PROCESS_EVENT, keys.PROCESSING, (event_id,), event_id, f"process_event {event_id}"
    )
    jobs.enqueue_with(connection, job, lambda pipe: pipe.lrem(keys.claimed(job_id), 1, event_id))


def drain(connection: redis.Redis, job_id: str) -> int:
    """Process batches from the inbox, for up to LINGER seconds; the number of events processed (or handed off)."""
    started = time.monotonic()
    done = 0
    while True:
        again = time.monotonic() - started < LINGER
        taken = inbox.take(connection, job_id, BATCH, hold=again)
        if not taken:
            return done
        stored = connection.mget([keys.event(event_id) for event_id in taken])
        for index, (event_id, raw) in enumerate(zip(taken, stored, strict=True)):
            if time.monotonic() - started > GIVE_BACK_AFTER:
                given = inbox.give_back(connection, job_id, taken[index:])
                log.info("inbox_given_back", events=given, reason="half the job's time used")
                return done + index
            try:
                processing.process(connection, event_id, raw)
            except BaseTimeoutException:
                raise
            except Exception:
                log.exception("event_failed", event_id=event_id, reason="retried in a job of its own")
                hand_off(connection, job_id, event_id)
        # Only now: a re-run after dying anywhere above processes the whole claim again, which repeats
        # nothing (each event is applied once, with its deliveries).
        connection.delete(keys.claimed(job_id))
        structlog.contextvars.clear_contextvars()
        done += len(taken)
        if not again:
            return done
