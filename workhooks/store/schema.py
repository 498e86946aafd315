"""Which layout the data in Redis has, and how older layouts are brought forward.

``wh:schema`` holds the layout version. A store without it is either empty (nothing under
``wh:``) or was written by a release from before versions existed (layout 0). Processes refuse
to start on a layout newer than they understand, or older than they can read, and say what to
run; ``workhooks migrate`` applies each step in order, is safe to run twice and on an empty store.

Layouts:
  0  workhooks 0.1.0 before versions: the same keys as 1, without wh:schema.
  1  wh:schema added; every key as store/keys.py names it.
  2  per-subject lanes and rings (wh:lanes:, wh:ring:) and the pollers' wh:poll:seen:, for
     recurrence-aware ids; events carry a sequence.
  3  each subject's stay (phase, status, since, entry) in its state, and the indexes that follow it:
     wh:phase:<phase> (open subjects by when their stay began) and wh:deadlines, for reminders and
     deadlines (store/stays.py).
  4  deliveries wait in per-sink queues (wh:out:<sink>...; store/outbox.py, docs/delivery.md) instead
     of RQ jobs. No data changes: a retry the release before scheduled as an RQ job moves into its
     queue when it falls due. The version is new so that release refuses to run on queues it cannot see.
  5  wh:subjects (every subject by its last event: the console's Work view), and the actions people take
     (wh:action:..., wh:actions:<source>:<subject>, wh:slack:<sink>:<subject>; store/actions.py).
     The migration indexes each stored subject; the action keys are new.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, cast

import redis

from workhooks.platforms import PLATFORMS, of_event_type
from workhooks.platforms.base import Platform, State
from workhooks.store import keys, stays

CURRENT = 5
# This code reads layouts from here to CURRENT without a migration: a store not yet migrated works,
# its lanes start empty (ids the release before stored are still recognised as resends).
OLDEST_READABLE = 0
LOCK = keys.SCHEMA + ":lock"
LOCK_SECONDS = 600
SCAN_LIMIT = 100  # SCAN calls spent looking for any wh: key before calling a store empty


class SchemaError(Exception):
    """The data's layout is one this code cannot work with; the message says what to run."""


def _stamp_only(connection: redis.Redis) -> None:
    """0 -> 1 and 3 -> 4: the keys did not change; only the version is new."""


def _status_of(state: dict[str, Any]) -> str | None:
    status = state.get("status")
    if not isinstance(status, str):
        current = state.get("current")
        status = current.get("status") if isinstance(current, dict) else None
    return status if isinstance(status, str) else None


def _seed_lanes(connection: redis.Redis) -> None:
    """1 -> 2: each subject's status lane begins at what its state shows, then at what the events still
    waiting say (accepted by the release before, not applied yet: claimed by a drain job first, then
    the inbox, oldest first), so a resend of the last callback before the upgrade stays a resend.
    Subjects this release already observed (their lanes have a sequence) are left as they are; the
    message and snapshot lanes start empty (ids the release before stored are recognised meanwhile)."""
    for key in connection.scan_iter(match=keys.state("*", "*"), count=1000):
        raw = connection.get(key)
        state = json.loads(raw) if raw else None
        if not isinstance(state, dict) or not state.get("source") or not state.get("subject"):
            continue
        lanes = keys.lanes(state["source"], state["subject"])
        if connection.hexists(lanes, "seq"):
            continue
        status = _status_of(state)
        history = [entry for entry in state.get("history", []) if isinstance(entry, dict)]
        setter = next((entry.get("event_id") for entry in reversed(history)
                       if entry.get("to") == status and entry.get("applied", True)), None)  # fmt: skip
        if status is not None and setter:
            connection.hsetnx(lanes, "status:value", status)
            connection.hsetnx(lanes, "status:id", setter)
        if "current" in state and state.get("events"):
            connection.hsetnx(lanes, "presence:value", "removed" if state.get("removed") else "present")
            connection.hsetnx(lanes, "presence:id", state["events"][-1])
        connection.expire(lanes, keys.STATE_TTL)
    waiting: list[bytes] = []
    for claimed in connection.scan_iter(match=keys.claimed("*"), count=1000):
        waiting += cast(list[bytes], connection.lrange(claimed, 0, -1))
    waiting += cast(list[bytes], connection.lrange(keys.INBOX, 0, -1))
    for event_id in waiting:
        raw = connection.get(keys.event(event_id.decode()))
        event = json.loads(raw) if raw else None
        if not isinstance(event, dict) or "sequence" in event or not event.get("type", "").endswith(".status_changed"):
            continue  # this release's own events set their lanes when they were accepted
        status = (event.get("data") or {}).get("status")
        lanes = keys.lanes(event["source"].removeprefix("/sources/"), event["subject"])
        if isinstance(status, str) and not connection.hexists(lanes, "seq"):
            connection.hset(lanes, mapping={"status:value": status, "status:id": event["id"]})
            connection.expire(lanes, keys.STATE_TTL)


def _platform_of(connection: redis.Redis, state: State) -> Platform | None:
    """A stored subject's platform, without the config: by the type of its newest stored event, else (a
    subject a poll recorded) the one platform whose polled entity it is, else the one naming its status."""
    for event_id in reversed(state.get("events") or []):
        raw = connection.get(keys.event(str(event_id)))
        if raw:
            found = of_event_type(str(json.loads(raw).get("type", "")))
            if found is not None:
                return found
    entity = str(state.get("subject", "")).partition("/")[0]
    polled = [p for p in PLATFORMS.values() if p.poller is not None and p.poller.entity == entity]
    if len(polled) == 1:
        return polled[0]
    status = _status_of(state)
    naming = [p for p in polled or PLATFORMS.values() if status is not None and status in p.status_phases]
    return naming[0] if len(naming) == 1 else None


def _seed_stays(connection: redis.Redis) -> None:
    """2 -> 3: each stored subject gets its stay — since its last update, begun by its newest event — and
    its place in the phase and deadline indexes (a Wordy job's deadline is learned at its next read). A
    subject that already has a stay (this release processed it first) is left as it is."""

    def seed(pipe: Any) -> None:
        raw = pipe.get(key)
        state = json.loads(raw) if raw else None
        if not isinstance(state, dict) or not state.get("source") or not state.get("subject") or "stay" in state:
            return
        since = stays.unix(str(state.get("updated_at") or "")) or time.time()
        events = state.get("events") or []
        entry = str(events[-1]) if events else stays.first_entry()
        platform = _platform_of(connection, state)
        pipe.multi()
        stays.settle(pipe, state, platform, since, entry, None)
        pipe.set(key, json.dumps(state, separators=(",", ":")), keepttl=True)

    for key in connection.scan_iter(match=keys.state("*", "*"), count=1000):
        connection.transaction(seed, key)  # a worker of either release may write the state meanwhile


def _index_subjects(connection: redis.Redis) -> None:
    """4 -> 5: each stored subject in wh:subjects, by its last update (a subject indexed already stays)."""
    for key in connection.scan_iter(match=keys.state("*", "*"), count=1000):
        raw = connection.get(key)
        state = json.loads(raw) if raw else None
        if not isinstance(state, dict) or not state.get("source") or not state.get("subject"):
            continue
        at = stays.unix(str(state.get("updated_at") or "")) or time.time()
        connection.zadd(keys.SUBJECTS, {keys.subject_member(state["source"], state["subject"]): at}, nx=True)


# version -> (what the step does, the step): each brings the data from that version to the next.
MIGRATIONS: dict[int, tuple[str, Callable[[redis.Redis], None]]] = {
    0: ("mark the store's layout (no data changes)", _stamp_only),
    1: ("seed each subject's lanes from its state and the events still waiting (recurrence-aware ids)", _seed_lanes),
    2: ("index each subject by its phase and deadline (reminders and deadlines)", _seed_stays),
    3: ("deliveries wait in per-sink queues (no data changes: scheduled retries move there when due)", _stamp_only),
    4: ("index every subject for the console's Work view (actions are new keys)", _index_subjects),
}


def _has_data(connection: redis.Redis) -> bool:
    cursor = 0
    for _ in range(SCAN_LIMIT):
        cursor, found = connection.scan(cursor, match=keys.PREFIX + "*", count=1000)
        if any(key != keys.SCHEMA.encode() for key in found):
            return True
        if cursor == 0:
            return False
    return True  # a large store: it certainly has data


def version(connection: redis.Redis) -> int | None:
    """The store's layout; None for an empty store."""
    raw = connection.get(keys.SCHEMA)
    if raw is not None:
        return int(raw)
    return 0 if _has_data(connection) else None


def check(connection: redis.Redis) -> int | None:
    """The layout, when this code can read it; SchemaError (saying what to do) otherwise."""
    found = version(connection)
    if found is not None and found > CURRENT:
        raise SchemaError(
            f"the data in Redis has layout {found}, written by a newer workhooks; this one reads up to "
            f"layout {CURRENT}: run the newer release (or restore a backup taken before it ran)"
        )
    if found is not None and found < OLDEST_READABLE:
        raise SchemaError(
            f"the data in Redis has layout {found}, older than this workhooks reads: run 'workhooks migrate'"
        )
    return found


def ensure(connection: redis.Redis) -> int:
    """At a process's start: refuse a layout it cannot read, and mark an empty store as the current layout."""
    found = check(connection)
    if found is None:
        connection.set(keys.SCHEMA, CURRENT, nx=True)
        return CURRENT
    return found


def migrate(connection: redis.Redis, report: Callable[[str], None] = lambda line: None) -> int:
    """Bring the data to CURRENT, one step at a time; returns the number of steps applied."""
    found = check(connection)
    if found is None:
        connection.set(keys.SCHEMA, CURRENT, nx=True)
        report(f"the store is empty: marked as layout {CURRENT}")
        return 0
    if not connection.set(LOCK, 1, nx=True, ex=LOCK_SECONDS):
        raise SchemaError(f"another 'workhooks migrate' is running (or died less than {LOCK_SECONDS} s ago)")
    applied = 0
    try:
        for step in range(found, CURRENT):
            description, apply = MIGRATIONS[step]
            report(f"layout {step} -> {step + 1}: {description}")
            apply(connection)
            connection.set(keys.SCHEMA, step + 1)
            applied += 1
    finally:
        connection.delete(LOCK)
    report(f"the store is at layout {CURRENT}, this release's" + ("" if applied else " (nothing to do)"))
    return applied
