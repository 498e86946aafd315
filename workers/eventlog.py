"""The accepted events, newest first, with filters and what became of each: `workhooks events list`.

The ingest script adds every accepted event to one sorted set (keys.EVENTS_INDEX, scored by
arrival) in the same step that stores it, and drops entries past the events' ttl.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import cast

import redis

from workers import delivery, state
from workhooks.core.events import Event
from workhooks.store import keys

PAGE = 500
MAX_SCANNED = 200_000  # a filter that matches nothing stops here rather than reading every event
STATUSES = ("queued", "processed", "delivered", "retrying", "dead", "mismatch")


@dataclass(frozen=True)
class Filters:
    source: str | None = None
    type: str | None = None  # a glob: wordy.*
    subject: str | None = None
    phase: str | None = None
    since: float = 0.0
    status: str | None = None  # one of STATUSES

    def admits(self, event: Event) -> bool:
        return (
            (self.source is None or event.source == self.source)
            and (self.type is None or fnmatchcase(event.type, self.type))
            and (self.subject is None or event.subject == self.subject)
            and (self.phase is None or event.phase == self.phase)
        )


@dataclass
class Listed:
    event: Event
    received_at: float
    status: str
    deliveries: dict[str, str] = field(default_factory=dict)  # sink -> delivery status


def status_of(processed: bool, deliveries: dict[str, str]) -> str:
    """One word for an event: queued, processed (routed nowhere), delivered, retrying, or dead."""
    if not deliveries:
        return "processed" if processed else "queued"
    states = set(deliveries.values())
    if delivery.DEAD in states:
        return "dead"
    if delivery.PENDING in states:
        return "retrying"
    return "delivered"


def _page(
    connection: redis.Redis, ids: list[bytes], sinks: list[str]
) -> Iterator[tuple[Event | None, bool, list[object]]]:
    """(event, refused by confirm, [processed, delivery status per sink]) for each id."""
    with connection.pipeline(transaction=False) as pipe:
        for event_id in ids:
            decoded = event_id.decode()
            pipe.get(keys.event(decoded))
            pipe.hget(keys.mismatch(decoded), "event")  # confirm released the event: its record keeps it
            pipe.hexists(keys.raw(decoded), state.PROCESSED_AT)
            for sink in sinks:
                pipe.hget(keys.delivery(delivery.delivery_id(decoded, sink)), "status")
        replies = pipe.execute()
    width = 3 + len(sinks)
    for index in range(len(ids)):
        raw, refused, *rest = replies[index * width : (index + 1) * width]
        kept = raw or refused
        yield (Event.from_json(kept) if kept else None), raw is None and refused is not None, rest


def find(
    connection: redis.Redis, filters: Filters, sinks: Iterable[str], limit: int = 50, cursor: str | None = None
) -> tuple[list[Listed], str | None]:
    """Newest first: events received since `filters.since` that pass the filters, at most `limit`.

    Returns them and a cursor for the next page (None at the end). The cursor is the page's upper
    bound and an offset under it: events arriving meanwhile sort above the bound and shift nothing.
    """
    sinks = list(sinks)
    found: list[Listed] = []
    upper, offset = "+inf", 0
    if cursor:
        bound, _, position = cursor.partition(":")
        upper, offset = bound, int(position)
    while len(found) < limit and offset < MAX_SCANNED:
        reply = connection.zrevrangebyscore(keys.EVENTS_INDEX, upper, filters.since, start=offset, num=PAGE,
                                            withscores=True)  # fmt: skip
        rows = cast(list[tuple[bytes, float]], reply)
        if not rows:
            return found, None
        if upper == "+inf":
            upper = repr(rows[0][1])
        consumed = 0
        for (event, refused, replies), (_, score) in zip(
            _page(connection, [event_id for event_id, _ in rows], sinks), rows, strict=True
        ):
            offset, consumed = offset + 1, consumed + 1
            if event is None or not filters.admits(event):
                continue
            processed, *statuses = replies
            deliveries = {
                sink: value.decode() for sink, value in zip(sinks, statuses, strict=True) if isinstance(value, bytes)
            }
            status = "mismatch" if refused else status_of(bool(processed), deliveries)
            if filters.status is None or status == filters.status:
                found.append(Listed(event, score, status, deliveries))
                if len(found) == limit:
                    break
        if len(rows) < PAGE and consumed == len(rows):
            return found, None
    return found, f"{upper}:{offset}"


def age(received_at: float) -> str:
    seconds = max(0, int(time.time() - received_at))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
