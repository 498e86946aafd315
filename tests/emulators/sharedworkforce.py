"""Shared Workforce REST API in memory: X-API-Key; /tasks/completed, /tasks/{id}/responses; fires callbacks."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.emulators.base import Emulator


class SharedWorkforce(Emulator):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.tasks: dict[int, dict[str, Any]] = {}

    def complete(self, task_id: int, title: str, answers: list[str], callback_url: str | None = None) -> None:
        """A task completes; its callback is posted unless 'lost' (callback_url None)."""
        responses = [{"answer": answer, "id": str(100 + n)} for n, answer in enumerate(answers)]
        with self.lock:
            self.tasks[task_id] = {"id": task_id, "title": title, "responses": responses}
        if callback_url is not None:
            body = {"api_key": self.api_key, "task": {"id": task_id, "title": title, "responses": responses}}
            headers = {"content-type": "application/vnd.com.sharedworkforce.text+json", "x-api-key": self.api_key}
            httpx.post(callback_url, content=json.dumps(body), headers=headers)

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("x-api-key") != self.api_key:
            return 401, {"error": "Your API key was not supplied or is incorrect."}
        with self.lock:
            if path == "/tasks/completed":
                return 200, [{"task": {"id": t["id"], "title": t["title"]}} for t in self.tasks.values()]
            parts = [part for part in path.split("/") if part]
            if len(parts) == 3 and parts[2] == "responses" and parts[1].isdigit() and int(parts[1]) in self.tasks:
                return 200, list(self.tasks[int(parts[1])]["responses"])
        return 404, {"error": "Not found"}
