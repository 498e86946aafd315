"""Per-job/task/order state in Redis: each platform's pure appliers (workhooks/platforms/<name>/state.py),
run under WATCH/MULTI so an event is applied once, however often it is processed.

The same transaction keeps the subject's *stay* — its phase and status, since when, and the event
that began it — and the indexes that follow it: one sorted set per open phase (subjects by when they
entered their stay) and one of deadlines, which reminders and deadlines read (workers/watch.py)
without scanning every state. Derived events (workhooks/core/derived.py) leave the state alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import redis

from workhooks.core.derived import is_derived
from workhooks.core.events import Event, Phase
from workhooks.platforms import of_event_type
from workhooks.platforms.base import Platform, State
from workhooks.store import keys, stays

PROCESSED_AT = "processed_at"  # a field of the event's raw hash: when its processing was committed


# The subject's state and the event's processed mark in one round trip, under the transaction's WATCH
_READ = "return {redis.call('GET', KEYS[1]), redis.call('HEXISTS', KEYS[2], ARGV[1])}"

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
    """Apply ``event`` and run ``fan_out`` in the same MULTI, once per event, even if processed again.
    ``facts`` (a deadline the platform's API showed) are kept in the state as well."""
    key, marked = keys.state(event.source, event.subject), keys.raw(event.id)
    if is_derived(event.type):
        return _fan_out_only(connection, event, fan_out)

    def transaction(pipe: Any) -> tuple[Event, bool]:
        raw, processed = pipe.execute_command("EVAL", _READ, 2, key, marked, PROCESSED_AT)
        current = json.loads(raw) if raw else None
        if processed or (current is not None and event.id in current["events"]):
            return event, False
        new = apply(current, event)
        new.update(facts or {})
        final = event if event.phase is not None else event.with_phase(phase_of(new, event))
        pipe.multi()
        stays.settle(pipe, new, of_event_type(event.type), stays.unix(event.time), event.id, final.phase)
        pipe.set(key, json.dumps(new, separators=(",", ":")), ex=keys.STATE_TTL)
        index(pipe, event.source, event.subject, stays.unix(event.time))
        if final is not event:
            pipe.set(keys.event(event.id), final.to_json(), keepttl=True)
        fan_out(pipe, final)
        return final, True

    result = connection.transaction(transaction, key, marked, value_from_callable=True)  # type: ignore[arg-type]
    return cast(tuple[Event, bool], result)


def index(pipe: Any, source: str, subject: str, at: float) -> None:
    """The subject in the Work view's index, by its last event; entries older than a state's life go."""
    pipe.zadd(keys.SUBJECTS, {keys.subject_member(source, subject): at})
    pipe.zremrangebyscore(keys.SUBJECTS, "-inf", time.time() - keys.STATE_TTL)


def _fan_out_only(connection: redis.Redis, event: Event, fan_out: Callable[[Any, Event], None]) -> tuple[Event, bool]:
    """A derived event: routed and marked once, its subject's state untouched."""
    marked = keys.raw(event.id)

    def transaction(pipe: Any) -> tuple[Event, bool]:
        if pipe.hexists(marked, PROCESSED_AT):
            return event, False
        pipe.multi()
        fan_out(pipe, event)
        return event, True

    result = connection.transaction(transaction, marked, value_from_callable=True)  # type: ignore[arg-type]
    return cast(tuple[Event, bool], result)


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
