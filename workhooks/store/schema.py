"""Which layout the data in Redis has, and how older layouts are brought forward.

``wh:schema`` holds the layout version. A store without it is either empty (nothing under
``wh:``) or was written by a release from before versions existed (layout 0). Processes refuse
to start on a layout newer than they understand, or older than they can read, and say what to
run; ``workhooks migrate`` applies each step in order, is safe to run twice and on an empty store.

Layouts:
  0  workhooks 0.1.0 before versions: the same keys as 1, without wh:schema.
  1  wh:schema added; every key as store/keys.py names it.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from workhooks.store import keys

CURRENT = 1
OLDEST_READABLE = 0  # this code reads layouts from here to CURRENT without a migration
LOCK = keys.SCHEMA + ":lock"
LOCK_SECONDS = 600
SCAN_LIMIT = 100  # SCAN calls spent looking for any wh: key before calling a store empty


class SchemaError(Exception):
    """The data's layout is one this code cannot work with; the message says what to run."""


def _stamp_only(connection: redis.Redis) -> None:
    """0 -> 1: the keys did not change; only the version is new."""


# version -> (what the step does, the step): each brings the data from that version to the next.
MIGRATIONS: dict[int, tuple[str, Callable[[redis.Redis], None]]] = {
    0: ("mark the store's layout (no data changes)", _stamp_only),
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
