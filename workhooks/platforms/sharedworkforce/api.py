"""Shared Workforce through its API (X-API-Key): responses whose callback never arrived.

Reads GET /tasks/completed, and GET /tasks/{id}/responses for each completed task not yet
known, and builds the same event the callback would have produced (same id).
"""

from __future__ import annotations

from typing import Any

from workhooks.core.events import Callback
from workhooks.core.exceptions import CallbackError
from workhooks.platforms.api import ApiClient, PollError
from workhooks.platforms.base import Poller, State
from workhooks.platforms.sharedworkforce import callback
from workhooks.platforms.sharedworkforce.settings import SharedWorkforceSettings

# The document: a request without the Shared Workforce MIME type in Accept is refused (406).
ACCEPT = f"{callback.VENDOR_JSON}, application/json"


def client(settings: SharedWorkforceSettings) -> ApiClient:
    return ApiClient(settings.timeout, headers={"X-API-Key": settings.secrets()[0], "Accept": ACCEPT})


def _tasks(body: Any) -> list[dict[str, Any]]:
    items = body.get("tasks", body) if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise PollError("GET /tasks/completed answered no list")
    return [item.get("task", item) for item in items if isinstance(item, dict)]


def fetch(settings: SharedWorkforceSettings, api: ApiClient) -> list[dict[str, Any]]:
    base = str(settings.base_url).rstrip("/")
    return [task for task in _tasks(api.get_json(f"{base}/tasks/completed")) if task.get("id") is not None]


def responses(settings: SharedWorkforceSettings, api: ApiClient, task_id: Any) -> list[dict[str, Any]]:
    body = api.get_json(f"{str(settings.base_url).rstrip('/')}/tasks/{task_id}/responses")
    found = body.get("responses", body) if isinstance(body, dict) else body
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def enrich(settings: SharedWorkforceSettings, api: ApiClient, item: dict[str, Any]) -> None:
    """Only for tasks not known yet: one request each."""
    item["responses"] = responses(settings, api, item["id"])


def previous(state: State | None) -> dict[str, Any] | None:
    return {"seen": True} if state else None  # a callback (or an earlier poll) already told us


def key(item: dict[str, Any]) -> str:
    return str(item["id"])


def snapshot(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.get("id"), "title": item.get("title", item.get("name"))}


def changes(before: dict[str, Any] | None, item: dict[str, Any]) -> list[Callback]:
    if before is not None or not item.get("responses"):
        return []
    try:
        return [callback.to_callback({"task": item})]
    except CallbackError:
        return []


RECONCILER = Poller(
    entity="task",
    client=client,
    fetch=fetch,
    key=key,
    snapshot=snapshot,
    changes=changes,
    previous=previous,
    enrich=enrich,
)
