"""Worksection admin API v2 in memory: ?action=&page=&hash=md5(page + action + key); errors as
HTTP 200 {"status": "error", "status_code": N, "message": ...}."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.emulators.base import Emulator


class Worksection(Emulator):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.tasks: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}

    def add_task(self, name: str, project: str = "100") -> str:
        with self.lock:
            task_id = str(9000 + len(self.tasks))
            self.tasks[task_id] = {
                "id": task_id, "name": name, "page": f"/project/{project}/{task_id}/", "status": "active",
                "priority": "5", "date_added": "2026-11-22 10:00", "user_to": {"email": "ed@example.com", "name": "Ed"},
            }  # fmt: skip
            self.comments[task_id] = []
            return task_id

    def set_status(self, task_id: str, status: str) -> None:
        with self.lock:
            self.tasks[task_id]["status"] = status

    def add_comment(self, task_id: str, text: str, author: str = "Ed") -> None:
        with self.lock:
            comments = self.comments[task_id]
            comment_id = str(500 + sum(map(len, self.comments.values())))
            author_info = {"name": author, "email": "ed@example.com"}
            comments.append(
                {"id": comment_id, "text": text, "date_added": "2026-11-22 11:00", "user_from": author_info}
            )

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if path.rstrip("/") != "/api/admin/v2":
            return 404, None
        action, page = query.get("action", [""])[0], query.get("page", [""])[0]
        expected = hashlib.md5((page + action + self.api_key).encode()).hexdigest()  # noqa: S324
        if query.get("hash", [""])[0] != expected:
            return 200, {"status": "error", "status_code": 2, "message": "Action hash is missed or invalid"}
        with self.lock:
            if action == "get_all_tasks":
                return 200, {"status": "ok", "data": [dict(task) for task in self.tasks.values()]}
            if action == "get_comments":
                task_id = page.rstrip("/").rsplit("/", 1)[-1]
                if task_id not in self.tasks:
                    return 200, {"status": "error", "status_code": 5, "message": "Task is invalid"}
                return 200, {"status": "ok", "data": list(self.comments[task_id])}
        return 200, {"status": "error", "status_code": 0, "message": "Action is invalid"}
