"""What a person reads about a Wordy job."""

from __future__ import annotations

from typing import Any

from workhooks.core.derived import BALANCE_LOW, BALANCE_RECOVERED
from workhooks.core.events import Event
from workhooks.core.templates import Template
from workhooks.platforms.base import Presenter
from workhooks.platforms.wordy.statuses import MESSAGE_ADDED, STATUS_CHANGED

HEADLINES = {
    "awc": "waiting for a word count",
    "acp": "awaiting your payment",
    "aer": "with the editor",
    "acr": "awaiting your review",
    "c": "complete",
}
DEFAULTS = {
    STATUS_CHANGED: Template(
        title="Wordy job {{ data.job_id }}: {{ headline }}",
        body="Status changed from {{ data.previous_status_label }} to {{ data.status_label }}.",
    ),
    MESSAGE_ADDED: Template(
        title="Wordy job {{ data.job_id }}: new message{% if data.author %} from {{ data.author }}{% endif %}",
        body="{{ data.message }}",
    ),
    BALANCE_LOW: Template(
        title="Wordy account {{ source }}: balance {{ data.balance_text }} is below {{ data.threshold }}",
        body="The next jobs may not be paid for. Add funds at https://wordy.com/account/.",
    ),
    BALANCE_RECOVERED: Template(
        title="Wordy account {{ source }}: balance {{ data.balance_text }} is back above {{ data.threshold }}",
        body="The balance is no longer below the threshold.",
    ),
}


def link(event: Event) -> str | None:
    if event.type in (BALANCE_LOW, BALANCE_RECOVERED):
        return "https://wordy.com/account/"
    return f"https://wordy.com/jobs/{event.data['job_id']}/" if "job_id" in event.data else None


def context(event: Event) -> dict[str, Any]:
    """``headline``: the job's new status as the customer would say it."""
    return {"headline": HEADLINES.get(str(event.data.get("status")), event.data.get("status_label", ""))}


PRESENTER = Presenter(name="Wordy", defaults=DEFAULTS, link=link, context=context)
