"""Per-job/task/order state in Redis: each platform's pure appliers (workhooks/platforms/<name>/state.py),
written only if the state is still what was read (store/guarded.py), so an event is applied once,
however often it is processed.

The same write keeps the subject's *stay* — its phase and status, since when, and the event
that began it — and the indexes that follow it: one sorted set per open phase (subjects by when they
entered their stay) and one of deadlines, which reminders and deadlines read (workers/watch.py)
without scanning every state. Derived events (workhooks/core/derived.py) leave the state alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from workhooks.core.derived import is_derived
from workhooks.core.events import Event, Phase
from workhooks.platforms import of_event_type
from workhooks.platforms.base import Platform, State
from workhooks.store import guarded, keys, stays

PROCESSED_AT = "processed_at"  # a field of the event's raw hash: when its processing was committed


TRIES = 100  # reads of a subject's state another writer changed meanwhile, before apply_event gives up

KEPT = 100  # the newest entries of a subject's events, history and messages kept in its state


def apply(state: State | None, event: Event) -> State:
    """The state after ``event``; applying an event twice changes nothing (within the KEPT newest,
    and beyond them apply_event's processed mark says so)."""
    state = json.loads(json.dumps(state)) if state else {"subject": event.subject, "source": event.source, "events": []}
    if event.id in state["events"]:
        return state
    platform = of_event_type(event.type)
    apply_one = platform.appliers.get(event.type) if platform is not None else None
    if apply_one is not None:
        state = apply_one(state, event)
    state["events"].append(event.id)
    for name in ("events", "history", "messages"):  # a busy subject's state does not grow without bound
        if isinstance(state.get(name), list) and len(state[name]) > KEPT:
            state[name] = state[name][-KEPT:]
    state["updated_at"] = event.time
    return state


def phase_of(state: State, event: Event) -> Phase:
    """The phase an event carries: its own, else the one its subject's status is in now."""
    if event.phase is not None:
        return event.phase
    platform = of_event_type(event.type)
    status = state.get("status")
    if platform is not None and isinstance(status, str) and status in platform.status_phases:
        return platform.status_phases[status]
    return "in_progress"


def apply_event(
    connection: redis.Redis,
    event: Event,
    fan_out: Callable[[Any, Event], None],
    facts: Mapping[str, Any] | None = None,
) -> tuple[Event, bool]:
    """Apply ``event`` and run ``fan_out`` with the same write, once per event, even if processed again:
    written only if the state is still what was read and the event still unmarked (store/guarded.py).
    ``facts`` (a deadline the platform's API showed) are kept in the state as well."""
    key, marked = keys.state(event.source, event.subject), keys.raw(event.id)
    if is_derived(event.type):  # routed and marked once, its subject's state untouched
        commands = guarded.recorder(connection)
        fan_out(commands, event)
        return event, guarded.write(connection, commands, key, marked, PROCESSED_AT, compare=False)
    for _ in range(TRIES):
        commands = guarded.recorder(connection)
        raw, processed = guarded.read(connection, key, marked, PROCESSED_AT)
        current = json.loads(raw) if raw else None
        if processed or (current is not None and event.id in current["events"]):
            return event, False
        new = apply(current, event)
        new.update(facts or {})
        final = event if event.phase is not None else event.with_phase(phase_of(new, event))
        stays.settle(commands, new, of_event_type(event.type), stays.unix(event.time), event.id, final.phase)
        commands.set(key, json.dumps(new, separators=(",", ":")), ex=keys.STATE_TTL)
        index(commands, event.source, event.subject, stays.unix(event.time))
        if final is not event:
            commands.set(keys.event(event.id), final.to_json(), keepttl=True)
        fan_out(commands, final)
        if guarded.write(connection, commands, key, marked, PROCESSED_AT, raw):
            return final, True
    raise redis.WatchError(f"{key} changed on every one of {TRIES} reads")


def index(pipe: Any, source: str, subject: str, at: float) -> None:
    """The subject in the Work view's index, by its last event; entries older than a state's life go."""
    pipe.zadd(keys.SUBJECTS, {keys.subject_member(source, subject): at})
    pipe.zremrangebyscore(keys.SUBJECTS, "-inf", time.time() - keys.STATE_TTL)


def keep_facts(
    connection: redis.Redis, platform: Platform, source: str, subject: str, facts: Mapping[str, Any]
) -> bool:
    """Facts a poll read (a deadline) into a stored subject's state and its indexes; False when nothing changed."""
    key = keys.state(source, subject)

    def transaction(pipe: Any) -> bool:
        raw = pipe.get(key)
        current = json.loads(raw) if raw else None
        if not isinstance(current, dict) or all(current.get(name) == value for name, value in facts.items()):
            return False
        current.update(facts)
        stay = current.get("stay") or {}
        pipe.multi()
        since, entry = stay.get("since") or time.time(), stay.get("entry") or stays.first_entry()
        stays.settle(pipe, current, platform, float(since), str(entry), stay.get("phase"))
        pipe.set(key, json.dumps(current, separators=(",", ":")), keepttl=True)
        return True

    return bool(connection.transaction(transaction, key, value_from_callable=True))  # type: ignore[arg-type]


def load(connection: redis.Redis, source: str, subject: str) -> State | None:
    raw = connection.get(keys.state(source, subject))
    return json.loads(raw) if raw else None
