"""Per-job/task/order state in Redis: each platform's pure appliers (workhooks/platforms/<name>/state.py),
run under WATCH/MULTI so an event is applied once, however often it is processed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import redis

from workhooks.core.events import Event, Phase
from workhooks.platforms import of_event_type
from workhooks.platforms.base import State
from workhooks.store import keys

PROCESSED_AT = "processed_at"  # a field of the event's raw hash: when its processing was committed


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


def apply_event(connection: redis.Redis, event: Event, fan_out: Callable[[Any, Event], None]) -> tuple[Event, bool]:
    """Apply ``event`` and run ``fan_out`` in the same MULTI, once per event, even if processed again."""
    key, marked = keys.state(event.source, event.subject), keys.raw(event.id)

    def transaction(pipe: Any) -> tuple[Event, bool]:
        raw = pipe.get(key)
        current = json.loads(raw) if raw else None
        if (current is not None and event.id in current["events"]) or pipe.hexists(marked, PROCESSED_AT):
            return event, False
        new = apply(current, event)
        final = event if event.phase is not None else event.with_phase(phase_of(new, event))
        pipe.multi()
        pipe.set(key, json.dumps(new, separators=(",", ":")), ex=keys.STATE_TTL)
        if final is not event:
            pipe.set(keys.event(event.id), final.to_json(), keepttl=True)
        fan_out(pipe, final)
        return final, True

    result = connection.transaction(transaction, key, marked, value_from_callable=True)  # type: ignore[arg-type]
    return cast(tuple[Event, bool], result)


def load(connection: redis.Redis, source: str, subject: str) -> State | None:
    raw = connection.get(keys.state(source, subject))
    return json.loads(raw) if raw else None
