"""WorkTaps API v1 in memory: Bearer (or Basic with the token as user); GET /api/v1/accounts with
limit/page; errors as 4xx {"code": 4xxxx, "message": ...}."""

from __future__ import annotations

import base64
from typing import Any

from tests.emulators.base import Emulator


class WorkTaps(Emulator):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.accounts: dict[int, dict[str, Any]] = {}

    def add_account(self, first: str, last: str, email: str) -> int:
        with self.lock:
            account_id = 1000 + len(self.accounts)
            self.accounts[account_id] = {
                "id": account_id, "created": "2026-11-22T10:00:00Z", "firstName": first, "lastName": last,
                "email": email, "role": "EMPLOYEE", "timezone": "America/New_York", "jobTitle": "Editor",
                "department": {"id": "d1", "name": "Editorial", "slug": "editorial"},
                "locations": [{"id": "l1", "name": "HQ", "slug": "hq"}], "meta": {},
            }  # fmt: skip
            return account_id

    def update_account(self, account_id: int, **fields: Any) -> None:
        with self.lock:
            self.accounts[account_id].update(fields)

    def remove_account(self, account_id: int) -> None:
        with self.lock:
            del self.accounts[account_id]

    def _authorized(self, headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        basic = "Basic " + base64.b64encode(f"{self.token}:".encode()).decode()
        return given in (f"Bearer {self.token}", basic)

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if not self._authorized(headers):
            return 401, {"code": 40000, "message": "Unauthorized request"}
        if path != "/api/v1/accounts":
            return 404, {"code": 40003, "message": "Not found"}
        limit = int(query.get("limit", ["100"])[0])
        page = int(query.get("page", ["1"])[0])
        with self.lock:
            records = [dict(account) for _, account in sorted(self.accounts.items())]
        return 200, {"total": len(records), "records": records[(page - 1) * limit : page * limit]}
