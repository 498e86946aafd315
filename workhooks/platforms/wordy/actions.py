"""What a customer does to a Wordy job through the API (wordy-api-1.0.txt), from Slack, the console or the CLI.

- Confirm complete: POST /job/{id}/confirm/ (the edit is awaiting our response, ``acr``) -> ``c``.
- Reject: POST /job/{id}/reject/ with ``message``, why (``acr``) -> back to the editor, ``aer``.
- Reply: POST /job/{id}/conversation/ with ``message``: any job not complete.
- Pay: POST /job/{id}/pay/ (``acp``): spends money, so it is off unless a source names it.

Each is sent once: a confirm whose answer was lost is not repeated blindly (the job is read first).
Errors come as {"error": kind, "verbose": message}; the person acting reads the verbose message.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from workhooks.platforms.api import Outcome, act, outcome
from workhooks.platforms.base import Action, State
from workhooks.platforms.wordy.api import _base, client
from workhooks.platforms.wordy.settings import WordySettings


def _job_id(subject: str) -> int:
    return int(subject.removeprefix("job/"))


def _said(response: httpx.Response) -> str | None:
    if 200 <= response.status_code < 300:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and (body.get("verbose") or body.get("error")):
        return f"Wordy answered {response.status_code}: {str(body.get('verbose') or body.get('error'))[:200]}"
    return None


def _post(path: str, text_field: str | None = None) -> Callable[[WordySettings, str, State, str | None], Outcome]:
    def perform(settings: WordySettings, subject: str, state: State, text: str | None) -> Outcome:
        if settings.api_key is None:
            return Outcome(False, None, "this source has no api_key: Wordy cannot be called")
        api = client(settings)
        try:
            form = {text_field: text or ""} if text_field else None
            url = f"{_base(settings)}/job/{_job_id(subject)}/{path}/"
            return outcome(act(api.client, "POST", url, data=form), _said)
        finally:
            api.close()

    return perform


def _status(*statuses: str) -> Callable[[State], bool]:
    return lambda state: state.get("status") in statuses


def _keyed(settings: WordySettings) -> bool:
    return settings.api_key is not None


def _open(state: State) -> bool:
    return state.get("status") not in (None, "c")


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("confirm", "Confirm complete", _status("acr"), _post("confirm"), usable=_keyed,
               confirm="Confirm the edit as complete? Wordy closes the job.", style="primary"),
        Action("reject", "Reject…", _status("acr"), _post("reject", "message"),
               ask="Why is the edit not right? (the editor reads this)", style="danger", usable=_keyed,
               confirm="Send the edit back to the editor?"),
        Action("reply", "Reply…", _open, _post("conversation", "message"), ask="Your message to the editor",
               once=False, usable=_keyed),
        Action("pay", "Pay", _status("acp"), _post("pay"), spends_money=True, usable=_keyed,
               confirm="Pay for this job from the Wordy account's balance?"),
    )
}  # fmt: skip
