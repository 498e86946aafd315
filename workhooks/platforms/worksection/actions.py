"""What a team does to a Worksection task through the admin API (worksection-api.txt: "post and get task
comments", "close and reopen tasks").

The document names only get_all_tasks and get_projects; the method names used here — post_comment (with
``text``), complete_task and reopen_task, each with the task's ``page`` in its hash — are Worksection's
published v2 names, an assumption the document does not state. Errors come as HTTP 200 with
{"status": "error", "status_code": N, "message": ...}: 12/14, already closed; 13/15, it has open subtasks.
Closing and reopening are safe to repeat (closing a closed task is refused with 12, changing nothing).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from workhooks.platforms.api import Outcome, act, outcome
from workhooks.platforms.base import Action, State
from workhooks.platforms.worksection.poller import ERRORS, _url, client, signed
from workhooks.platforms.worksection.settings import WorksectionSettings

MEANINGS = {**ERRORS, 10: "Field is required", 12: "Task is already closed", 13: "Task has open subtasks",
            14: "Subtask is already closed", 15: "Subtask has open subtasks"}  # fmt: skip


def _said(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None if response.is_success else f"Worksection answered {response.status_code}"
    if isinstance(body, dict) and body.get("status") == "error":
        code = body.get("status_code")
        meaning = MEANINGS.get(code if isinstance(code, int) else -1, str(body.get("message", ""))[:200])
        return f"Worksection error {code}: {meaning}"
    return None


def _page(state: State) -> str | None:
    current = state.get("current")
    page = current.get("page") if isinstance(current, dict) else None
    return page if isinstance(page, str) and page.startswith("/project/") else None


Perform = Callable[[WorksectionSettings, str, State, str | None], Outcome]


def _call(method: str, text_field: str | None = None) -> Perform:
    def perform(settings: WorksectionSettings, subject: str, state: State, text: str | None) -> Outcome:
        page = _page(state)
        if page is None:
            return Outcome(False, None, "the task's page is not known yet (the next poll reads it)")
        params = signed(method, settings.api_key.get_secret_value(), page)
        if text_field:
            params[text_field] = text or ""
        api = client(settings)
        try:
            return outcome(act(api.client, "POST", _url(settings), data=params), _said)
        finally:
            api.close()

    return perform


def _status(state: State) -> str | None:
    current = state.get("current")
    return current.get("status") if isinstance(current, dict) else None


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("comment", "Comment…", lambda state: _page(state) is not None, _call("post_comment", "text"),
               ask="Your comment", once=False),
        Action("close", "Close", lambda state: _status(state) == "active", _call("complete_task"),
               confirm="Close this task in Worksection?", retry_safe=True),
        Action("reopen", "Reopen", lambda state: _status(state) == "done", _call("reopen_task"),
               confirm="Reopen this task in Worksection?", retry_safe=True),
    )
}  # fmt: skip
