"""What a customer does to a Shared Workforce task (sharedworkforce-rest-api.txt).

Correct the answer: POST /tasks/{id}/authorized_responses with {"authorized_response": {"answer": ...}},
"if you have received a response that you are not expecting": on a completed task. The answer is sent
as text; text that is a JSON list or object (["Contains nudity", "Contains swearing"]) is sent as that.
"""

from __future__ import annotations

import json
from typing import Any

from workhooks.platforms.api import Outcome, act, outcome
from workhooks.platforms.base import Action, State
from workhooks.platforms.sharedworkforce.api import client
from workhooks.platforms.sharedworkforce.callback import VENDOR_JSON
from workhooks.platforms.sharedworkforce.settings import SharedWorkforceSettings


def _answer(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return text


def correct(settings: SharedWorkforceSettings, subject: str, state: State, text: str | None) -> Outcome:
    if not text or not text.strip():
        return Outcome(False, None, "an answer is needed")
    api = client(settings)
    try:
        url = f"{str(settings.base_url).rstrip('/')}/tasks/{subject.removeprefix('task/')}/authorized_responses"
        body = json.dumps({"authorized_response": {"answer": _answer(text)}}).encode()
        headers = {"Content-Type": VENDOR_JSON}
        return outcome(act(api.client, "POST", url, content=body, headers=headers))
    finally:
        api.close()


def _completed(state: State) -> bool:
    return state.get("status") == "completed"


ACTIONS: dict[str, Action] = {
    "correct": Action("correct", "Correct the answer…", _completed, correct, ask="The answer you expected", once=False)
}
