"""Per-job/task state in Redis: a pure ``apply`` per event type, run under WATCH/MULTI.

Callbacks arrive late, twice or out of order. A status moves forward in a job's life, or
along a transition that starts from the current status (an edit sent back to the editor);
anything else is recorded in the history as late but does not move the status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import redis

from receiver import keys
from receiver.events import Event, Phase
from receiver.sources import sharedworkforce, wordy
from workers.pollers import ENTITIES
from workers.pollers import EVENT_TYPES as POLLED_EVENT_TYPES

STATE_TTL = 180 * 24 * 3600

State = dict[str, Any]


def key_for(source: str, subject: str) -> str:
    return f"{keys.PREFIX}state:{source}:{subject}"


def state_key(event: Event) -> str:
    return key_for(event.source, event.subject)


def _wordy_status(state: State, event: Event) -> State:
    previous, status = event.data["previous_status"], event.data["status"]
    current = state.get("status")
    moves = current is None or previous == current or wordy.STATUS_RANK[status] > wordy.STATUS_RANK.get(current, -1)
    if moves:
        state["status"] = status
        state["status_label"] = wordy.STATUS_LABELS[status]
    history = state.setdefault("history", [])
    history.append({"event_id": event.id, "from": previous, "to": status, "at": event.time, "applied": moves})
    return state


def _wordy_message(state: State, event: Event) -> State:
    state.setdefault("messages", []).append(
        {
            "event_id": event.id,
            "author": event.data.get("author"),
            "message": event.data.get("message"),
            "at": event.time,
        }
    )
    return state


def _swf_responses(state: State, event: Event) -> State:
    state["title"] = event.data.get("title") or state.get("title")
    state["callback_params"] = event.data.get("callback_params")
    known = {json.dumps(item, sort_keys=True) for item in state.get("responses", [])}
    for response in event.data.get("responses", []):
        if json.dumps(response, sort_keys=True) not in known:
            state.setdefault("responses", []).append(response)
    state["status"] = "completed"
    return state


def _polled(state: State, event: Event) -> State:
    """A change seen by a poller: keep the entity as last seen, the snapshot pollers compare with."""
    for entity in ENTITIES:
        if entity in event.data:
            state["current"] = event.data[entity]
    state["removed"] = event.type.endswith(".removed")
    if "status" in event.data:
        history = state.setdefault("history", [])
        history.append({"event_id": event.id, "from": event.data.get("previous_status"), "to": event.data["status"],
                        "at": event.time})  # fmt: skip
    return state


APPLY: dict[str, Callable[[State, Event], State]] = {
    wordy.STATUS_CHANGED: _wordy_status,
    wordy.MESSAGE_ADDED: _wordy_message,
    sharedworkforce.RESPONSES_RECEIVED: _swf_responses,
    **dict.fromkeys(POLLED_EVENT_TYPES, _polled),
}


def apply(state: State | None, event: Event) -> State:
    """The state after ``event``; applying an event twice changes nothing."""
    state = json.loads(json.dumps(state)) if state else {"subject": event.subject, "source": event.source, "events": []}
    if event.id in state["events"]:
        return state
    apply_one = APPLY.get(event.type)
    if apply_one is not None:
        state = apply_one(state, event)
    state["events"].append(event.id)
    state["updated_at"] = event.time
    return state


def phase_of(state: State, event: Event) -> Phase:
    """The phase an event carries: its own, else the one its job is in now."""
    if event.phase is not None:
        return event.phase
    status = state.get("status")
    if status in wordy.STATUS_PHASES:
        return wordy.STATUS_PHASES[status]
    return "in_progress"


def apply_event(connection: redis.Redis, event: Event, fan_out: Callable[[Any, Event], None]) -> tuple[Event, bool]:
    """Apply ``event`` and run ``fan_out`` in the same MULTI, once per event, even if processed again."""
    key = state_key(event)

    def transaction(pipe: Any) -> tuple[Event, bool]:
        raw = pipe.get(key)
        current = json.loads(raw) if raw else None
        if current is not None and event.id in current["events"]:
            return event, False
        new = apply(current, event)
        final = event if event.phase is not None else event.with_phase(phase_of(new, event))
        pipe.multi()
        pipe.set(key, json.dumps(new, separators=(",", ":")), ex=STATE_TTL)
        if final is not event:
            pipe.set(keys.event(event.id), final.to_json(), keepttl=True)
        fan_out(pipe, final)
        return final, True

    result = connection.transaction(transaction, key, value_from_callable=True)  # type: ignore[arg-type]
    return cast(tuple[Event, bool], result)


def load(connection: redis.Redis, source: str, subject: str) -> State | None:
    raw = connection.get(key_for(source, subject))
    return json.loads(raw) if raw else None
