"""A subject's *stay* — its phase and status, since when, and the event that began it — and the indexes
that follow it: one sorted set per open phase (subjects by when their stay began) and one of deadlines.

Written inside the state transaction (workers/state.py), by polls that record a subject silently
(workers/polling.py) and by the layout-3 migration (store/schema.py); read by workers/watch.py.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from workhooks.config.schema import OPEN_PHASES
from workhooks.core.events import Phase
from workhooks.platforms.base import Platform, State
from workhooks.store import keys


def standing(state: State, platform: Platform | None, phase: Phase | None = None) -> tuple[Phase | None, str | None]:
    """The subject's phase and status now: by its status, else (no status: a task) the phase its last event
    carried; None for a status the platform does not name."""
    status = state.get("status")
    if not isinstance(status, str):
        current = state.get("current")
        status = current.get("status") if isinstance(current, dict) else None
    status = status if isinstance(status, str) else None
    if status is not None:
        return (platform.status_phases.get(status) if platform is not None else None), status
    return phase, None


def of(state: State | None) -> dict[str, Any]:
    """The subject's stay as stored (empty when it has none)."""
    stay = (state or {}).get("stay")
    return stay if isinstance(stay, dict) else {}


def entry(state: State | None) -> str | None:
    """The event (or first_entry mark) that began the subject's stay: what makes a decision once per stay."""
    found = of(state).get("entry")
    return found if isinstance(found, str) else None


def shown_status(state: State | None) -> str | None:
    """The subject's status as people read it: its label, else its status, else a polled item's status."""
    state = state or {}
    current = state.get("current")
    polled = current.get("status") if isinstance(current, dict) else None
    value = state.get("status_label") or state.get("status") or polled
    return str(value) if value else None


def first_entry() -> str:
    """What begins a stay no event began (a subject a poll recorded, a state from before stays): unique per stay."""
    return f"seen-{time.time():.3f}"


def unix(iso_time: str) -> float:
    try:
        return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def settle(pipe: Any, state: State, platform: Platform | None, at: float, entry: str, phase: Phase | None) -> None:
    """Inside the caller's transaction, before the state is written: a new stay when the phase or status
    changed (``entry`` the event that began it, ``at`` when), and the phase and deadline indexes after it."""
    old = state.get("stay") or {}
    now, status = standing(state, platform, phase)
    member = keys.subject_member(state["source"], state["subject"])
    if (old.get("phase"), old.get("status")) != (now, status):
        if old.get("phase") in OPEN_PHASES:
            pipe.zrem(keys.phase_index(old["phase"]), member)
        state["stay"] = {"phase": now, "status": status, "since": at, "entry": entry}
        if now in OPEN_PHASES:
            pipe.zadd(keys.phase_index(now), {member: at})
    due = state.get("due")
    if now in OPEN_PHASES and isinstance(due, int | float):
        pipe.zadd(keys.DEADLINES, {member: due})
    else:
        pipe.zrem(keys.DEADLINES, member)
