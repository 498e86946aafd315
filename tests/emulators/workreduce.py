"""WorkReduce API v2 emulator, from workreduce-api-v2.txt alone.

Serves under /v2. Auth: `Authorization: <api key>` (the raw key, no scheme), else 401.
GET /v2/orders lists OPEN orders ("retrieves all open orders"), newest first, limit 1..100 (default 10),
starting_after / ending_before cursors (ending_before wins when both are given), optional `status` filter.
GET/PUT/DELETE /v2/orders/<n>, POST /v2/orders, GET /v2/tasks.

The document is ambiguous about closed orders (Approved, Canceled, Client Canceled): its list sample shows an
Approved order and the status filter accepts closed values, yet the list is of "open orders" and the single
order endpoint returns "a specific open order". Two switches pick a reading:
- closed_lookup_status: None (default) answers a closed order on GET /orders/<n>; 404 (or 410, "Gone") refuses it.
- status_filter_finds_closed: False (default) filters among open orders only (status=Approved finds nothing);
  True lets `status` search all orders, so status=Approved lists approved orders.

Assumptions where the document is silent:
- Open means any status but Approved, Canceled and Client Canceled ("Delivered" still awaits approval).
- Lifecycle follows the diagram, which has "Completed" between QA Complete and Delivered although the status
  table lacks it (and both samples say "Complete", in neither list). The `status` filter takes the table's
  values only; anything else is a 400. `move` walks the diagram one step at a time.
- Cursors are positions in the full chronological list, closed orders included, so a page boundary survives
  its order closing; an order number that never existed is a 400. ending_before gives the `limit` orders just
  newer than the cursor, still newest first.
- An API-created order starts "Activated" (submitted by the client), activated_at = created_at.
- POST takes form fields (urlencoded or multipart; the curl sample mixes -d and -F, which curl refuses) or
  JSON; name and task_type are required, task_type must be one of GET /tasks, due_date must be ISO 8601.
  `description` becomes the first work_request note (the order object has no description field).
- PUT /orders/<n> (the document's curl instead POSTs to /orders with order_number in the body; that would
  create an order here). A body order_number that differs from the path is a 400. Closed orders cannot be
  updated or cancelled: 400, unless closed_lookup_status refuses them first.
- DELETE makes the order "Client Canceled"; `cancel(n)` is WorkReduce cancelling ("Canceled").
- Answers are 200; errors {"error": <meaning from the table>, "message": <detail>}.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.base import Emulator, Request, Response

LIFECYCLE = (
    "Draft",
    "Activated",
    "Accepted",
    "In Progress",
    "Submitted",
    "In QA",
    "QA Complete",
    "Completed",
    "Delivered",
    "Approved",
)
STATUS_VALUES = (
    "Draft",
    "Activated",
    "Accepted",
    "In Progress",
    "Submitted",
    "In QA",
    "QA Complete",
    "Delivered",
    "Approved",
    "Canceled",
    "Client Canceled",
)
CLOSED = ("Approved", "Canceled", "Client Canceled")
TASK_TYPES = [
    {"task_type": "qa_screenshot", "task_type_category": "Screenshots", "description": "QA Screenshot of Ad Creative"},
    {
        "task_type": "recon",
        "task_type_category": "Reconciliation",
        "description": "Reconciliation of quarterly ad spend",
    },
]
MEANINGS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 410: "Gone"}
UPDATABLE = ("name", "description", "due_date", "attachments", "task_type")
START = datetime(2018, 5, 3, 18, 30, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def error(status: int, message: str) -> Response:
    return Response(status, {"error": MEANINGS.get(status, str(status)), "message": message})


class WorkReduce(Emulator):
    def __init__(
        self,
        api_key: str = "meowmeowmeow",
        closed_lookup_status: int | None = None,
        status_filter_finds_closed: bool = False,
        account_name: str = "Media Company",
        account_id: str = "WRCUST43442",
        first_order_number: int = 7847,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.closed_lookup_status = closed_lookup_status
        self.status_filter_finds_closed = status_filter_finds_closed
        self.account = {"account_name": account_name, "account_id": account_id}
        self.orders: dict[str, dict[str, Any]] = {}  # in creation order
        self.history: dict[str, list[str]] = {}
        self.next_number = first_order_number
        self.ticks = 0  # each new order is one minute newer than the last (a deterministic clock)

    # ---- helpers for tests ------------------------------------------------------------------------------

    def add_order(
        self,
        name: str = "QA Screenshot of Ad Creative",
        task_type: str = "qa_screenshot",
        status: str = "Activated",
        description: str | None = None,
        **fields: Any,
    ) -> str:
        with self.lock:
            number = f"{self.next_number:08d}"
            self.next_number += 1
            self.ticks += 1
            created = stamp(START + timedelta(minutes=self.ticks))
            category = next((t["task_type_category"] for t in TASK_TYPES if t["task_type"] == task_type), "")
            notes = [{"created_at": created, "text": description}] if description else []
            self.orders[number] = {
                **self.account,
                "order_number": number,
                "name": name,
                "status": "Draft",
                "due_date": None,
                "created_at": created,
                "activated_at": None,
                "completed_at": None,
                "requester_email": None,
                "team": None,
                "work_request": {"notes": notes, "attachments": []},
                "work_result": {"total_billable_hours": 0, "notes": [], "attachments": []},
                "task_type": task_type,
                "task_type_category": category,
                **fields,
            }
            self.history[number] = ["Draft"]
            if status in CLOSED[1:]:
                self._set(number, status)
            elif status != "Draft":
                self.move(number, status)
            return number

    def move(self, number: str, status: str) -> None:
        """Walk the documented lifecycle forward, one step at a time, up to `status`."""
        with self.lock:
            order = self.orders[number]
            here, there = LIFECYCLE.index(order["status"]), LIFECYCLE.index(status)
            if there < here:
                raise ValueError(f"{number}: cannot go back from {order['status']} to {status}")
            for step in LIFECYCLE[here + 1 : there + 1]:
                self._set(number, step)

    def send_back(self, number: str, status: str) -> None:
        """A move the document's one-way lifecycle does not draw but work does: QA sends the order back
        (In QA -> In Progress). Assumed possible; the status is one of the table's."""
        assert status in STATUS_VALUES and status not in CLOSED
        with self.lock:
            self._set(number, status)

    def cancel(self, number: str, by_client: bool = False) -> None:
        with self.lock:
            self._set(number, "Client Canceled" if by_client else "Canceled")

    def _set(self, number: str, status: str) -> None:
        order = self.orders[number]
        order["status"] = status
        self.history[number].append(status)
        if status == "Activated":
            order["activated_at"] = order["created_at"]
        if status == "Completed":
            order["completed_at"] = stamp(START + timedelta(minutes=self.ticks, seconds=30))

    # ---- HTTP ---------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != self.api_key:
            return error(401, "Your API key is wrong.")
        parts = request.path.strip("/").split("/")
        with self.lock:
            if parts == ["v2", "tasks"] and request.method == "GET":
                return Response(200, TASK_TYPES)
            if parts == ["v2", "orders"] and request.method == "GET":
                return self._list(request)
            if parts == ["v2", "orders"] and request.method == "POST":
                return self._create(request)
            if len(parts) != 3 or parts[:2] != ["v2", "orders"] or request.method == "POST":
                return error(404, "no such route")
            order = self.orders.get(parts[2])
            if order is None:
                return error(404, f"no order {parts[2]}")
            if order["status"] in CLOSED and self.closed_lookup_status is not None:
                return error(self.closed_lookup_status, f"order {parts[2]} is closed")
            if request.method == "GET":
                return Response(200, order)
            if order["status"] in CLOSED:
                return error(400, f"order {parts[2]} is closed")
            if request.method == "DELETE":
                self._set(parts[2], "Client Canceled")
                return Response(200, {"order_number": parts[2], "deleted": "success"})
            return self._update(order, request)

    def _list(self, request: Request) -> Response:
        limit_text = request.param("limit", "10") or ""
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
            return error(400, "limit must be between 1 and 100")
        status = request.param("status")
        if status is not None and status not in STATUS_VALUES:
            return error(400, f"status must be one of {', '.join(STATUS_VALUES)}")
        newest_first = sorted(self.orders.values(), key=lambda o: (o["created_at"], o["order_number"]), reverse=True)
        position = {o["order_number"]: i for i, o in enumerate(newest_first)}
        before, after = request.param("ending_before"), request.param("starting_after")
        cursor = before if before is not None else after
        if cursor is not None and cursor not in position:
            return error(400, f"unknown order number {cursor}")

        def wanted(order: dict[str, Any]) -> bool:
            if status is not None:
                return order["status"] == status and (self.status_filter_finds_closed or status not in CLOSED)
            return order["status"] not in CLOSED

        matching = [o for o in newest_first if wanted(o)]
        limit = int(limit_text)
        if before is not None:
            page = [o for o in matching if position[o["order_number"]] < position[before]][-limit:]
        elif after is not None:
            page = [o for o in matching if position[o["order_number"]] > position[after]][:limit]
        else:
            page = matching[:limit]
        return Response(200, page)

    def _fields(self, request: Request) -> tuple[dict[str, Any], list[str]]:
        """Body fields (form or JSON) and attachment file names."""
        if isinstance(request.json, dict):
            fields = dict(request.json)
            names = [str(a) for a in fields.pop("attachments", []) or []]
        else:
            fields = {k: v[0] for k, v in request.form.items() if not k.startswith("attachments")}
            names = [u.filename for key in ("attachments[]", "attachments") for u in request.files.get(key, [])]
        return fields, names

    def _check(self, fields: dict[str, Any]) -> str | None:
        if "task_type" in fields and fields["task_type"] not in [t["task_type"] for t in TASK_TYPES]:
            return "unknown task_type"
        if fields.get("due_date") is not None:
            try:
                datetime.fromisoformat(str(fields["due_date"]))
            except ValueError:
                return "due_date must be ISO 8601"
        return None

    def _attach(self, order: dict[str, Any], names: list[str]) -> None:
        for name in names:
            url = f"https://s3.workreduce.com/{order['account_id'].lower()}/{name}"
            order["work_request"]["attachments"].append({"created_at": order["created_at"], "url": url})

    def _create(self, request: Request) -> Response:
        if request.json_error:
            return error(400, "unreadable JSON")
        fields, names = self._fields(request)
        missing = [name for name in ("name", "task_type") if not fields.get(name)]
        problem = f"missing {', '.join(missing)}" if missing else self._check(fields)
        if problem:
            return error(400, problem)
        extra = {k: fields[k] for k in ("due_date", "team", "requester_email") if fields.get(k)}
        number = self.add_order(fields["name"], fields["task_type"], description=fields.get("description"), **extra)
        self._attach(self.orders[number], names)
        return Response(200, {"order_number": number, "created": "success"})

    def _update(self, order: dict[str, Any], request: Request) -> Response:
        fields, names = self._fields(request)
        if fields.get("order_number") not in (None, order["order_number"]):
            return error(400, "order_number does not match the path")
        given = {k: fields[k] for k in UPDATABLE if k in fields}
        if not given and not names:
            return error(400, "give at least one of " + ", ".join(UPDATABLE))
        problem = self._check(given)
        if problem:
            return error(400, problem)
        for key in ("name", "due_date", "task_type"):
            if key in given:
                order[key] = given[key]
        if "task_type" in given:
            order["task_type_category"] = next(
                t["task_type_category"] for t in TASK_TYPES if t["task_type"] == given["task_type"]
            )
        if "description" in given:
            notes = order["work_request"]["notes"]
            note = {"created_at": order["created_at"], "text": given["description"]}
            notes[:1] = [note]
        self._attach(order, names)
        return Response(200, {"order_number": order["order_number"], "updated": "success"})
