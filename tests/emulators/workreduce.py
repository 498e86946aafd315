"""WorkReduce API v2 in memory: Authorization header, GET /v2/orders (reverse chronological,
limit 1..100, starting_after / ending_before cursors, status filter), GET /v2/orders/<n>."""

from __future__ import annotations

from typing import Any

from tests.emulators.base import Emulator

LIFECYCLE = ["Draft", "Activated", "Accepted", "In Progress", "Submitted", "In QA", "QA Complete", "Completed",
             "Delivered", "Approved"]  # fmt: skip


class WorkReduce(Emulator):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.orders: list[dict[str, Any]] = []  # oldest first

    def add_order(self, name: str, status: str = "Draft") -> str:
        with self.lock:
            number = f"{7847 + len(self.orders):08d}"
            self.orders.append({
                "account_name": "Media Company", "account_id": "WRCUST43442", "order_number": number, "name": name,
                "status": status, "due_date": "2026-12-01T18:30:00Z", "created_at": "2026-11-22T10:00:00Z",
                "requester_email": "george@big-agency.com", "team": "MENA launch ads", "task_type": "qa_screenshot",
                "task_type_category": "Screenshots",
            })  # fmt: skip
            return number

    def set_status(self, number: str, status: str) -> None:
        with self.lock:
            order = next(order for order in self.orders if order["order_number"] == number)
            order["status"] = status
            if status in ("Delivered", "Approved"):
                order["work_result"] = {"total_billable_hours": 0.5, "notes": [{"text": "Task completed"}]}

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("authorization") != self.api_key:
            return 401, {"error": "Unauthorized -- Your API key is wrong."}
        if path.startswith("/v2/orders/"):
            number = path.rsplit("/", 1)[1]
            found = [order for order in self.orders if order["order_number"] == number]
            return (200, found[0]) if found else (404, {"error": "Not Found"})
        if path != "/v2/orders":
            return 404, {"error": "Not Found"}
        limit = int(query.get("limit", ["10"])[0])
        if not 1 <= limit <= 100:
            return 400, {"error": "limit must be between 1 and 100"}
        with self.lock:
            listing = list(reversed(self.orders))
        if "status" in query:
            listing = [order for order in listing if order["status"] == query["status"][0]]
        numbers = [order["order_number"] for order in listing]
        if "ending_before" in query:
            end = numbers.index(query["ending_before"][0])
            return 200, listing[max(0, end - limit) : end]
        start = numbers.index(query["starting_after"][0]) + 1 if "starting_after" in query else 0
        return 200, listing[start : start + limit]
