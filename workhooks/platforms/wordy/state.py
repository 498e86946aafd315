"""How Wordy's events change a job's state (pure; workers/state.py runs them in a transaction).

A status moves forward in a job's life, or along a transition that starts from the current
status (an edit sent back to the editor); anything else is recorded in the history as late
but does not move the status.
"""

from __future__ import annotations

from workhooks.core.events import Event
from workhooks.platforms.base import Applier, State
from workhooks.platforms.wordy.statuses import MESSAGE_ADDED, STATUS_CHANGED, STATUS_LABELS, STATUS_RANK, UNKNOWN


def status_changed(state: State, event: Event) -> State:
    previous, status = event.data["previous_status"], event.data["status"]
    current = state.get("status")
    moves = current is None or previous == current or STATUS_RANK.get(status, -1) > STATUS_RANK.get(current, -1)
    if moves:
        state["status"] = status
        state["status_label"] = STATUS_LABELS.get(status, UNKNOWN)
    history = state.setdefault("history", [])
    history.append({"event_id": event.id, "from": previous, "to": status, "at": event.time, "applied": moves})
    return state


def message_added(state: State, event: Event) -> State:
    state.setdefault("messages", []).append(
        {
            "event_id": event.id,
            "author": event.data.get("author"),
            "message": event.data.get("message"),
            "at": event.time,
        }
    )
    return state


APPLIERS: dict[str, Applier] = {STATUS_CHANGED: status_changed, MESSAGE_ADDED: message_added}
