"""How a Shared Workforce task's state changes: its responses, each kept once."""

from __future__ import annotations

import json

from workhooks.core.events import Event
from workhooks.platforms.base import Applier, State
from workhooks.platforms.sharedworkforce.callback import RESPONSES_RECEIVED


def responses_received(state: State, event: Event) -> State:
    state["title"] = event.data.get("title") or state.get("title")
    state["callback_params"] = event.data.get("callback_params")
    known = {json.dumps(item, sort_keys=True) for item in state.get("responses", [])}
    for response in event.data.get("responses", []):
        if json.dumps(response, sort_keys=True) not in known:
            state.setdefault("responses", []).append(response)
    state["status"] = "completed"
    return state


APPLIERS: dict[str, Applier] = {RESPONSES_RECEIVED: responses_received}
