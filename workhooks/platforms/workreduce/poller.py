"""WorkReduce orders: GET /orders with the Authorization header, cursor pagination (starting_after).

Every poll pages through the whole list (100 orders a page, up to `max_pages`): an old order
changes status (Delivered -> Approved) as often as a new one appears.
"""

from __future__ import annotations

from typing import Any

from workhooks.core.events import Callback, Phase
from workhooks.platforms.api import ApiClient, PollError
from workhooks.platforms.base import Poller
from workhooks.platforms.workreduce.settings import WorkReduceSettings

ENTITY = "order"
CREATED = "workreduce.order.created"
STATUS_CHANGED = "workreduce.order.status_changed"
EVENT_TYPES = (CREATED, STATUS_CHANGED)
PAGE_SIZE = 100

STATUS_PHASES: dict[str, Phase] = {
    "Draft": "queued",
    "Activated": "queued",
    "Accepted": "in_progress",
    "In Progress": "in_progress",
    "Submitted": "in_progress",
    "In QA": "in_progress",
    "QA Complete": "in_progress",
    "Completed": "in_progress",  # done by the worker, not yet delivered to the client
    "Complete": "in_progress",  # spelling used in the documents' own examples
    "Delivered": "awaiting_client",
    "Approved": "completed",
    "Canceled": "canceled",
    "Client Canceled": "canceled",
}
FIELDS = ("order_number", "name", "status", "due_date", "team", "requester_email", "task_type", "work_result")


def client(settings: WorkReduceSettings) -> ApiClient:
    return ApiClient(settings.timeout, headers={"Authorization": settings.api_key.get_secret_value()})


def fetch(settings: WorkReduceSettings, api: ApiClient) -> list[dict[str, Any]]:
    url = f"{str(settings.base_url).rstrip('/')}/orders"
    orders: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    for _ in range(settings.max_pages):
        page = api.get_json(url, params)
        if not isinstance(page, list):
            raise PollError("GET /orders did not answer a list")
        orders += [order for order in page if isinstance(order, dict) and order.get("order_number")]
        if len(page) < PAGE_SIZE:
            return orders
        params = {"limit": PAGE_SIZE, "starting_after": page[-1]["order_number"]}
    raise PollError(f"more than {settings.max_pages} pages of orders; raise max_pages")


def key(order: dict[str, Any]) -> str:
    return str(order["order_number"])


def snapshot(order: dict[str, Any]) -> dict[str, Any]:
    return {field: order.get(field) for field in FIELDS if order.get(field) is not None}


def changes(previous: dict[str, Any] | None, order: dict[str, Any]) -> list[Callback]:
    """Pure: what happened to one order since its last snapshot (None: never seen)."""
    current = snapshot(order)
    number, status = current["order_number"], str(current.get("status"))
    data = {**{k: v for k, v in current.items() if k != "status"}, "status": status}
    phase = STATUS_PHASES.get(status, "in_progress")
    if previous is None:
        return [Callback(CREATED, f"order/{number}", {**data, ENTITY: current}, (number,), phase)]
    if previous.get("status") != status:
        before = previous.get("status")
        changed = {**data, "previous_status": before, ENTITY: current}
        return [Callback(STATUS_CHANGED, f"order/{number}", changed, (number, before, status), phase)]
    return []


def removed(previous: dict[str, Any]) -> list[Callback]:
    return []  # orders are not deleted: a canceled order keeps its status


POLLER = Poller(entity=ENTITY, client=client, fetch=fetch, key=key, snapshot=snapshot, changes=changes, removed=removed)
