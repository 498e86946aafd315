"""Derived events enter like any other: through the one ingest, with an id fixed by the occurrence.

The id is ``event_id(source, type, *identity)``: the same occurrence — seen by two schedulers, or
again after a restart — is the same event, which ingest takes once. A derived event carries no
Observation, so it never takes part in the resend rule. This module also announces a pull source
whose key is refused (once per incident) and its recovery, and a delivery reaching dead letters
(never for a dead letter of such an announcement: no loops).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis
import structlog

from workhooks.core.clock import utc_now
from workhooks.core.derived import DELIVERY_DEAD, HEALTH_SOURCE, SOURCE_RECOVERED, SOURCE_UNAUTHORIZED
from workhooks.core.events import Callback, Event, Phase
from workhooks.store import keys, telemetry
from workhooks.store.ingest import Accepted, Ingest, prepare

log = structlog.get_logger("workhooks.derived")
_INGEST: Ingest | None = None


def event(source: str, kind: str, subject: str, data: dict[str, Any], identity: tuple[object, ...],
          phase: Phase | None = None) -> Event:  # fmt: skip
    """The derived event (pure): its id depends on ``source``, ``kind`` and ``identity`` only."""
    return Event.from_callback(source, Callback(kind, subject, data, identity, phase))


def emit(connection: redis.Redis, derived: Event, secrets: Iterable[str] = ()) -> Accepted:
    """Store and queue ``derived`` (once per id, however often it is emitted)."""
    global _INGEST
    _INGEST = _INGEST or Ingest()
    body = json.dumps(derived.data, separators=(",", ":"), default=str).encode()
    accepted = _INGEST.submit_sync(connection, prepare(derived, "application/json", body, secrets))
    if accepted.created:
        telemetry.count(connection, "workhooks_derived_events", derived.type)
        log.info("derived_event", id=accepted.id, type=derived.type, source=derived.source, subject=derived.subject)
    return accepted


def source_refused(connection: redis.Redis, name: str, error: str, secrets: Iterable[str] = ()) -> bool:
    """The platform refused the source's key: announced once per incident (until it is accepted again)."""
    current, incidents = connection.hmget(keys.poll_status(name), "unauthorized", "incidents")
    if current and int(current):
        return False
    incident = int(incidents or 0) + 1
    since = utc_now()
    data = {"source": name, "error": error[:300], "incident": incident, "since": since}
    refused = event(HEALTH_SOURCE, SOURCE_UNAUTHORIZED, f"source/{name}", data, (name, "unauthorized", incident))
    emit(connection, refused, secrets)
    connection.hset(keys.poll_status(name), mapping={"unauthorized": incident, "incidents": incident,
                                                     "unauthorized_since": since})  # fmt: skip
    return True


def source_accepted(connection: redis.Redis, name: str, secrets: Iterable[str] = ()) -> bool:
    """The key works (again): the end of an incident is announced once."""
    current, since = connection.hmget(keys.poll_status(name), "unauthorized", "unauthorized_since")
    if not current or not int(current):
        return False
    incident = int(current)
    data = {
        "source": name,
        "incident": incident,
        "since": since.decode() if isinstance(since, bytes) else since,
        "at": utc_now(),
    }
    emit(
        connection,
        event(HEALTH_SOURCE, SOURCE_RECOVERED, f"source/{name}", data, (name, "recovered", incident)),
        secrets,
    )
    connection.hset(keys.poll_status(name), "unauthorized", 0)
    return True


def delivery_dead(
    connection: redis.Redis, dead: Event, sink: str, delivery_id: str, attempts: int, error: str,
    secrets: Iterable[str] = (),
) -> Accepted | None:  # fmt: skip
    """A delivery out of attempts, as an event routes can send to an ops channel; None for the dead letter
    of such an event (announcing it would loop)."""
    if dead.type == DELIVERY_DEAD:
        log.warning("dead_letter_not_announced", reason="a dead letter of a workhooks.delivery.dead event")
        return None
    data = {"event_id": dead.id, "event_type": dead.type, "source": dead.source, "subject": dead.subject, "sink": sink,
            "delivery_id": delivery_id, "attempts": attempts, "error": error[:500]}  # fmt: skip
    return emit(connection, event(HEALTH_SOURCE, DELIVERY_DEAD, dead.subject, data, (delivery_id, "dead", attempts)),
                secrets)  # fmt: skip
