"""WorkReduce orders: GET /orders with the Authorization header, cursor pagination (starting_after).

Every poll pages through the whole list (100 orders a page, up to `max_pages`): an old order
changes status (Delivered -> Approved) as often as a new one appears.

The document says GET /orders "retrieves all open orders", yet its own sample lists an Approved
order and the `status` filter takes Approved, Canceled and Client Canceled. Read literally, an
order leaves the list when it is approved or canceled, so a known order missing from a complete
listing is looked up: GET /orders/<n> first (the document calls it "a specific open order", so
it may refuse a closed one), then the list filtered by each closed status, paged and bounded.
The change found is announced like any other; when neither lookup finds the order, one
`workreduce.order.closed` event says it closed with its final status unknown. Both spellings
of the finished step are read: "Complete" (the samples) and "Completed" (the lifecycle).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workhooks.core.derived import parse_time
from workhooks.core.events import Callback, Observation, Phase
from workhooks.platforms.api import ApiClient, PollError
from workhooks.platforms.base import Poller, Vanished
from workhooks.platforms.workreduce.settings import WorkReduceSettings

ENTITY = "order"
CREATED = "workreduce.order.created"
STATUS_CHANGED = "workreduce.order.status_changed"
CLOSED = "workreduce.order.closed"  # left the open list; neither lookup could read its final status
EVENT_TYPES = (CREATED, STATUS_CHANGED, CLOSED)
TERMINAL = ("Approved", "Canceled", "Client Canceled")
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


def _url(settings: WorkReduceSettings) -> str:
    return f"{str(settings.base_url).rstrip('/')}/orders"


def _pages(settings: WorkReduceSettings, api: ApiClient, **query: str) -> Iterator[list[dict[str, Any]]]:
    """GET /orders page by page (newest first, ``starting_after`` the last of each), at most max_pages."""
    params: dict[str, Any] = {"limit": PAGE_SIZE, **query}
    for _ in range(settings.max_pages):
        page = api.get_json(_url(settings), params)
        if not isinstance(page, list):
            raise PollError("GET /orders did not answer a list")
        yield [order for order in page if isinstance(order, dict) and order.get("order_number")]
        if len(page) < PAGE_SIZE:
            return
        params = {**params, "starting_after": page[-1]["order_number"]}
    raise PollError(f"more than {settings.max_pages} pages of orders; raise max_pages")


def fetch(settings: WorkReduceSettings, api: ApiClient) -> list[dict[str, Any]]:
    return [order for page in _pages(settings, api) for order in page]


def key(order: dict[str, Any]) -> str:
    return str(order["order_number"])


def snapshot(order: dict[str, Any]) -> dict[str, Any]:
    return {field: order.get(field) for field in FIELDS if order.get(field) is not None}


def changes(previous: dict[str, Any] | None, order: dict[str, Any]) -> list[Callback]:
    """Pure: what happened to one order since its last snapshot (None: never seen)."""
    current = snapshot(order)
    number, status = current["order_number"], str(current.get("status"))
    data = {**{k: v for k, v in current.items() if k != "status"}, "status": status}
    phase = STATUS_PHASES.get(status)  # a status the document does not name: no phase, not a guess
    if previous is None:
        return [Callback(CREATED, f"order/{number}", {**data, ENTITY: current}, (number,), phase)]
    if previous.get("status") != status:
        before = previous.get("status")
        changed = {**data, "previous_status": before, ENTITY: current}
        seen = Observation("status", status)
        return [Callback(STATUS_CHANGED, f"order/{number}", changed, (number, before, status), phase, seen)]
    return []


def closed_unknown(previous: dict[str, Any]) -> Callback:
    number = str(previous["order_number"])
    data = {**previous, "previous_status": previous.get("status"), "status": None, "final_status": "unknown",
            ENTITY: {**previous, "status": None}}  # fmt: skip
    identity = (number, previous.get("status"), "closed")
    return Callback(CLOSED, f"order/{number}", data, identity, "completed", Observation("status", "closed"))


def _closed_listings(settings: WorkReduceSettings, api: ApiClient, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The wanted orders as the list filtered by each closed status shows them (where it does)."""
    found: dict[str, dict[str, Any]] = {}
    for status in TERMINAL:
        for page in _pages(settings, api, status=status):
            found |= {key(order): order for order in page if key(order) in wanted and order.get("status") in TERMINAL}
            if wanted <= found.keys():
                return found
    return found


def vanished(settings: WorkReduceSettings, api: ApiClient, gone: list[dict[str, Any]]) -> Vanished:
    """Known orders missing from a complete listing of open orders: closed, or shifted between pages."""
    announced: list[Callback] = []
    forget: list[str] = []
    unresolved: list[dict[str, Any]] = []
    for previous in gone:
        number = key(previous)
        if previous.get("status") in TERMINAL:
            forget.append(number)  # already known to be closed
            continue
        order = api.get_json(f"{_url(settings)}/{number}", absent=(404, 410))
        if isinstance(order, dict) and order.get("status"):
            announced += changes(previous, order)
            if order["status"] in TERMINAL:
                forget.append(number)  # else still open: a page boundary moved while we read
        else:
            unresolved.append(previous)
    if unresolved:
        closed = _closed_listings(settings, api, {key(previous) for previous in unresolved})
        for previous in unresolved:
            order = closed.get(key(previous))
            announced += changes(previous, order) if order is not None else [closed_unknown(previous)]
            forget.append(key(previous))
    return Vanished(announced, forget)


def due(order: dict[str, Any]) -> float | None:
    """``due_date``, ISO 8601 as the document says (Unix seconds are read too)."""
    return parse_time(order.get("due_date"))


POLLER = Poller(
    entity=ENTITY, client=client, fetch=fetch, key=key, snapshot=snapshot, changes=changes, vanished=vanished,
    due=due,
)  # fmt: skip
