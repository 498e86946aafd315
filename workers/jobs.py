"""RQ entry points: small, by id. They take ids, never payloads, so no body or secret reaches RQ."""

from __future__ import annotations

from typing import Any

import redis
import structlog
from rq.job import get_current_job

from workers import delivery, inbox, processing
from workhooks.store import keys


def _job() -> Any:
    job = get_current_job()
    if job is None:
        raise RuntimeError("workers.jobs functions run inside an RQ worker")
    return job


def _connection() -> redis.Redis:
    connection: redis.Redis = _job().connection
    return connection


def drain_inbox() -> int:
    """Process a batch of accepted events from the inbox (queued by the receiver's ingest script)."""
    job = _job()
    return inbox.drain(job.connection, job.id)


def process_event(event_id: str) -> list[str]:
    """Process one event in a job of its own: an event whose processing failed in a batch, retried by RQ."""
    connection = _connection()
    return processing.process(connection, event_id, connection.get(keys.event(event_id)))


def poll_source(name: str) -> dict[str, object]:
    """Poll one pull source (enqueued by `workhooks scheduler`)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(source=name)
    from workers import polling

    return polling.poll(_connection(), name)


def check_account(name: str) -> dict[str, object]:
    """Read one source's account balance (enqueued by `workhooks scheduler`)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(source=name)
    from workers import account

    return account.check(_connection(), name)


def deliver(event_id: str, sink_name: str, attempt: int = 1) -> str:
    """A retry job of the previous release: the delivery goes to its sink's queue (docs/delivery.md)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(event_id=event_id, sink=sink_name)
    return delivery.deliver(_connection(), event_id, sink_name, attempt)


def run_action(action_id: str) -> str | None:
    """Carry out one action a person asked for (queued at the front by store/actions.py)."""
    structlog.contextvars.clear_contextvars()
    from workers import actions, settings

    return actions.run(_connection(), settings.config(), action_id)
