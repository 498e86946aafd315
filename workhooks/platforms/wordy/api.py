"""Wordy through its API (Basic auth, the key as password): confirm callbacks, reconcile missed ones.

Reconciliation reads GET /job/ (ids) and GET /job/{id}/ for each, and announces a status change
only for jobs it already knows, with the id the callback would have had: a callback that
arrives after all is a duplicate, and the other way round.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx

from workhooks.core.events import Callback, Event
from workhooks.core.exceptions import CallbackError
from workhooks.platforms.api import ApiClient, PollError
from workhooks.platforms.base import Poller, State
from workhooks.platforms.wordy import callback
from workhooks.platforms.wordy.settings import WordySettings
from workhooks.platforms.wordy.statuses import NEXT, STATUS_CHANGED, STATUS_LABELS, reachable

MAX_JOBS = 10_000


def client(settings: WordySettings) -> ApiClient:
    assert settings.api_key is not None
    return ApiClient(settings.timeout, auth=httpx.BasicAuth("", settings.api_key.get_secret_value()))


def _base(settings: WordySettings) -> str:
    return str(settings.base_url).rstrip("/")


def job(settings: WordySettings, api: ApiClient, job_id: int) -> dict[str, Any]:
    found = api.get_json(f"{_base(settings)}/job/{job_id}/")
    if not isinstance(found, dict) or "status" not in found:
        raise PollError(f"GET /job/{job_id}/ answered no status")
    return found


def fetch(settings: WordySettings, api: ApiClient) -> list[dict[str, Any]]:
    ids = api.get_json(f"{_base(settings)}/job/")
    if not isinstance(ids, list):
        raise PollError("GET /job/ did not answer a list of job ids")
    return [job(settings, api, int(job_id)) for job_id in ids[:MAX_JOBS] if str(job_id).isdigit()]


def key(item: dict[str, Any]) -> str:
    return str(item["id"])


def snapshot(item: dict[str, Any]) -> dict[str, Any]:
    return {"status": item.get("status")}


def previous(state: State | None) -> dict[str, Any] | None:
    return {"status": state["status"]} if state and state.get("status") else None


def initial_state(item: dict[str, Any]) -> dict[str, Any]:
    status = str(item.get("status"))
    return {"status": status, "status_label": STATUS_LABELS.get(status, status)}


def changes(before: dict[str, Any] | None, item: dict[str, Any]) -> list[Callback]:
    if before is None or before.get("status") == item.get("status"):
        return []
    previous, status = str(before["status"]), str(item.get("status"))
    body = {"status": [previous, status], "job_id": int(item["id"])}
    try:
        found = callback.parse(json.dumps(body).encode(), "application/json")  # what Wordy would have sent
    except CallbackError:  # a status we do not know: leave it to the operator, do not invent one
        return []
    # Reconciliation sees only where the job is now: a move that is not one step of the job's life
    # (aer -> c: the acr between was never seen) is announced as a gap, not as a transition.
    marks = {"reconciled": True, **({"gap": True} if status not in NEXT.get(previous, ()) else {})}
    return [dataclasses.replace(found, data={**found.data, **marks})]


def confirm(settings: WordySettings, event: Event) -> str | None:
    """With `confirm: true`, a status callback is trusted only if GET /job/{id}/ shows that status, or
    one the job can have reached from it since: None when so (or nothing to confirm), else what Wordy shows."""
    if not settings.confirm or event.type != STATUS_CHANGED:
        return None
    api = client(settings)
    try:
        found = job(settings, api, int(event.data["job_id"]))
    finally:
        api.close()
    actual, claimed = str(found.get("status")), str(event.data.get("status"))
    # A fast reject loop may have moved the job on since it called: its callbacks are still real.
    return None if reachable(claimed, actual) else actual


RECONCILER = Poller(
    entity="job",
    client=client,
    fetch=fetch,
    key=key,
    snapshot=snapshot,
    changes=changes,
    previous=previous,
    initial_state=initial_state,
    announce_new=False,  # a job first seen by a poll has no previous status to compare with
)
