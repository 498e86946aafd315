"""Every Redis key workhooks writes, every TTL, every RQ job path and job option: the storage contract.

Nothing else spells a key: receiver, workers, the CLI, tests and benchmarks import these names.
Stored data outlives code, so a change here changes what a running deployment reads —
it comes with a schema version and a migration (store/schema.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from rq import Retry
from rq.job import Job
from rq.queue import Queue
from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

PREFIX = "wh:"
# One queue for processing and delivery jobs: RQ dequeues from a single queue with LMOVE into a
# recoverable intermediate list (Redis >= 6.2), but from several with BLPOP, which loses the job
# if the worker dies right after the pop.
QUEUE = "workhooks"
QUEUE_KEY = Queue.redis_queue_namespace_prefix + QUEUE  # RQ's list of job ids waiting in it
RQ_WORKERS = REDIS_WORKER_KEYS  # RQ's set of registered workers
RQ_QUEUE_WORKERS = WORKERS_BY_QUEUE_KEY % QUEUE  # ... and of those serving our queue

EVENT_TTL = 30 * 24 * 3600  # how long events, raw bodies, deliveries and their dedupe keys are kept
QUARANTINE_TTL = 30 * 24 * 3600
QUARANTINE_MAX = 10_000  # the newest bodies kept; an older one goes (with its body) when a new one comes
STATE_TTL = 180 * 24 * 3600  # a job/task/order's state

SCHEMA = PREFIX + "schema"  # the layout version of everything under wh: (store/schema.py)
EVENTS_INDEX = PREFIX + "events"  # sorted set: event id -> received at (Unix time)
INBOX = PREFIX + "inbox"  # event ids accepted and not yet processed, oldest first
DRAIN_QUEUED = PREFIX + "inbox:queued"  # the drain job waiting in the queue, or running and taking again, if one is
QUARANTINE_INDEX = PREFIX + "quarantine"  # sorted set: item id -> quarantined at; TTL'd and capped on write
DELIVERIES_INDEX = PREFIX + "deliveries"  # sorted set: delivery id -> opened at; trimmed past EVENT_TTL
DEAD_INDEX = PREFIX + "dead"  # deliveries out of attempts or refused, -> when; trimmed past EVENT_TTL
MISMATCHES = PREFIX + "mismatches"  # callbacks the platform's API contradicted (confirm)
WORKER_COUNTERS = PREFIX + "metrics"  # hash: "<name>|<label value>|..." -> count (store/telemetry.py)
SUBJECTS = PREFIX + "subjects"  # sorted set: subject_member -> its last event (Unix time): the console's Work view
DEADLINES = PREFIX + "deadlines"  # sorted set: subject_member -> due (Unix time), open subjects with a deadline
WATCH_DUE = PREFIX + "watch:due"  # set with NX and a short TTL: reminders and deadlines were just evaluated
WATCH_DUE_MS = 900  # ... so two schedulers evaluate about once a second between them


def event(event_id: str) -> str:
    return f"{PREFIX}event:{event_id}"


def raw(event_id: str) -> str:
    """The redacted body an event came from, its content type, received_at and processed_at."""
    return f"{PREFIX}raw:{event_id}"


def claimed(job_id: str) -> str:
    """The events a drain job took and has not finished; a re-run of the job finishes them."""
    return f"{INBOX}:claimed:{job_id}"


def quarantined(item_id: str) -> str:
    return f"{PREFIX}quarantine:{item_id}"


def state(source: str, subject: str) -> str:
    return f"{PREFIX}state:{source}:{subject}"


def lanes(source: str, subject: str) -> str:
    """Per subject: each lane's current value and the id that set it, counts, the sequence (ingest)."""
    return f"{PREFIX}lanes:{source}:{subject}"


def ring(source: str, subject: str) -> str:
    """Per subject: its recent observations (lane, value, id, received at), for late arrivals."""
    return f"{PREFIX}ring:{source}:{subject}"


def claims(source: str, subject: str) -> str:
    """Hash: a platform record of the subject (a Wordy conversation entry) -> the event that announced it."""
    return f"{PREFIX}claims:{source}:{subject}"


def phase_index(phase: str) -> str:
    """Sorted set: subject_member -> when it entered its stay (Unix time), for subjects now in ``phase``.
    Only open phases are indexed (queued, in_progress, awaiting_client); the state transaction keeps it."""
    return f"{PREFIX}phase:{phase}"


def subject_member(source: str, subject: str) -> str:
    """A subject in the phase and deadline indexes: source names hold no ':' (config checks them)."""
    return f"{source}:{subject}"


def split_member(member: bytes | str) -> tuple[str, str]:
    text = member.decode() if isinstance(member, bytes) else member
    source, _, subject = text.partition(":")
    return source, subject


def watched(source: str, subject: str) -> str:
    """Hash: which derived events were sent for a subject ("<rule>|<entry>" -> reminders sent, "due|..." -> 1)."""
    return f"{PREFIX}watched:{source}:{subject}"


def account(name: str) -> str:
    """Hash: a source's account health (balance, low, crossings, checked_at; workers/account.py)."""
    return f"{PREFIX}account:{name}"


def account_due(name: str) -> str:
    """Set with NX and the source's account_interval as TTL: the next balance check is not due while it exists."""
    return f"{PREFIX}account:due:{name}"


def delivery(delivery_id: str) -> str:
    return f"{PREFIX}delivery:{delivery_id}"


def attempts(event_id: str) -> str:
    """Every attempt to deliver one event, to any sink: a list of JSON records."""
    return f"{PREFIX}attempts:{event_id}"


def _out(sink: str) -> str:
    return f"{PREFIX}out:{sink}"


def outbox(sink: str) -> str:
    """Hash: a sink's delivery state: breaker, rate limiter, pause, deliveries held (docs/delivery.md)."""
    return _out(sink)


def outbox_ready(sink: str) -> str:
    """Sorted set: subject_member -> when (ms) the head of its lane to this sink may be attempted."""
    return f"{_out(sink)}:ready"


def outbox_leases(sink: str) -> str:
    """Sorted set: subject_member -> when (ms) the lease on its head expires: the deliveries in flight."""
    return f"{_out(sink)}:leases"


def outbox_owners(sink: str) -> str:
    """Hash: subject_member -> the token of the dispatcher holding its lease."""
    return f"{_out(sink)}:owners"


def outbox_lane_prefix(sink: str) -> str:
    return f"{_out(sink)}:lane:"


def outbox_lane(sink: str, member: str) -> str:
    """List: one subject's delivery ids to one sink, in the order processing accepted them."""
    return outbox_lane_prefix(sink) + member


OUTBOX_WAKE = PREFIX + "out:wake"  # list: a token per new piece of delivery work; idle dispatchers BLPOP it
OUTBOX_WAKE_MAX = 100
OUTBOX_LEASE_MARGIN_MS = 10_000  # a lease is the sink's attempt timeout plus this


ACTIONS_INDEX = PREFIX + "actions"  # sorted set: action id -> requested at; trimmed past EVENT_TTL
ACTIONS_KEPT = 100  # the newest actions a subject's audit trail keeps
REFUSALS_KEPT = 20  # ... and the newest refused requests, apart


def action(action_id: str) -> str:
    """Hash: one action a person asked for — who, what, on which subject, and what the platform answered."""
    return f"{PREFIX}action:{action_id}"


def action_once(digest: str) -> str:
    """The action already asked for with this identity (a subject's stay and the action; a click's id)."""
    return f"{PREFIX}action:once:{digest}"


def action_link(nonce: str) -> str:
    """Set when an emailed action link is used: each link works once."""
    return f"{PREFIX}action:link:{nonce}"


def subject_actions(source: str, subject: str) -> str:
    """List: a subject's action ids, newest first (its audit trail)."""
    return f"{PREFIX}actions:{source}:{subject}"


def subject_refusals(source: str, subject: str) -> str:
    """List: a subject's refused requests (not on the allow list), newest first, capped apart from its trail."""
    return f"{PREFIX}refused:{source}:{subject}"


def slack_thread(sink: str, member: str) -> str:
    """Hash: the Slack message (channel, ts) a slack_app sink posted a subject's first event as: its thread."""
    return f"{PREFIX}slack:{sink}:{member}"


def mismatch(event_id: str) -> str:
    return f"{PREFIX}mismatch:{event_id}"


def _poll(kind: str, name: str) -> str:
    return f"{PREFIX}poll:{kind}:{name}"


def poll_status(name: str) -> str:
    """A pull source's last poll: last_ok_at, failures, last_error (workers/polling.py writes it)."""
    return _poll("status", name)


def poll_lock(name: str) -> str:
    return _poll("lock", name)


def poll_backoff(name: str) -> str:
    return _poll("backoff", name)


def poll_due(name: str) -> str:
    """Set with NX and the interval as TTL by the scheduler: the next poll is not due while it exists."""
    return _poll("due", name)


def poll_known(name: str) -> str:
    """The subjects a poller has seen, to notice one that disappears."""
    return _poll("known", name)


def poll_seen(name: str) -> str:
    """Hash: subject -> its snapshot as the last poll saw it (the poller's diff base)."""
    return _poll("seen", name)


def poll_closed(name: str) -> str:
    """Sorted set: subject -> when it closed (its snapshot is "null" in poll_seen until STATE_TTL)."""
    return _poll("closed", name)


def poll_baseline(name: str) -> str:
    """Set once the first poll recorded what existed without announcing it."""
    return _poll("baseline", name)


def rq_job(job_id: str) -> str:
    return Job.redis_job_namespace_prefix + job_id


# RQ jobs are stored by import path: these names are part of the stored data too.
DRAIN_INBOX = "workers.jobs.drain_inbox"
PROCESS_EVENT = "workers.jobs.process_event"
DELIVER = "workers.jobs.deliver"
POLL_SOURCE = "workers.jobs.poll_source"
CHECK_ACCOUNT = "workers.jobs.check_account"
RUN_ACTION = "workers.jobs.run_action"


@dataclass(frozen=True, slots=True)
class JobOptions:
    timeout: int
    result_ttl: int
    failure_ttl: int
    retry: Retry | None = None


# Processing (a drain job, or one event whose processing failed in a batch). The first retry is
# at once: a delayed one would wait for RQ's scheduler, whose lock a dead worker holds for a minute.
PROCESSING = JobOptions(
    timeout=20, result_ttl=600, failure_ttl=365 * 24 * 3600, retry=Retry(max=6, interval=[0, 5, 30, 120, 600, 3600])
)
# One delivery attempt: retries are scheduled by workers/delivery.py itself (Retry-After, jitter,
# dead letters); RQ's retry covers only a worker dying mid-job or Redis failing us. The timeout
# is the sink's own plus DELIVERY_TIMEOUT_MARGIN (DEFAULT_DELIVERY_TIMEOUT when it has none).
DELIVERY = JobOptions(timeout=60, result_ttl=600, failure_ttl=365 * 24 * 3600, retry=Retry(max=3, interval=[0, 10, 60]))
DELIVERY_TIMEOUT_MARGIN = 10
# One poll of one source; the timeout grows with the source's own (see poll_timeout).
POLL = JobOptions(timeout=120, result_ttl=60, failure_ttl=24 * 3600)
# One action on a platform (confirm, reject, reply), queued at the front: a click does not wait behind
# the processing jobs queued before it. Not retried by RQ: a confirm is not blindly repeated.
# Its retry covers only a worker dying mid-job (or Redis failing us): the run again finds the action
# "sending" and records its outcome as unknown, without sending it again (workers/actions.py).
ACTION = JobOptions(timeout=60, result_ttl=600, failure_ttl=30 * 24 * 3600, retry=Retry(max=2, interval=[0, 10]))
DRAIN_QUEUED_TTL = 60  # a lost drain job (an emptied queue) is replaced by the next arrival after this
# A drain job that will take again holds the flag this long at most: a slow batch (a platform's API) or a dead
# worker then lets the next arrival queue a job again, and a worker's sweep (workers/dispatch.py) queues one for
# what arrived meanwhile.
DRAIN_HOLD_MS = 1000


def delivery_timeout(sink_timeout: float | None) -> int:
    """Long enough for the sink's own timeout, so RQ never kills an attempt the sink would finish."""
    return int(sink_timeout) + DELIVERY_TIMEOUT_MARGIN if sink_timeout else DELIVERY.timeout


def poll_timeout(source_timeout: float) -> int:
    return max(POLL.timeout, int(source_timeout * 20))
