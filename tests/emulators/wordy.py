"""Wordy API 1.0 in memory: Basic auth with the key as password, GET /job/ and /job/{id}/; fires callbacks."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.emulators.base import Emulator


class Wordy(Emulator):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.jobs: dict[int, dict[str, Any]] = {}

    def add_job(self, job_id: int, status: str = "acp") -> None:
        with self.lock:
            self.jobs[job_id] = {
                "id": job_id,
                "status": status,
                "source_language_name": [2, "English (UK)"],
                "display_url": f"/jobs/{job_id}/",
            }

    def move(self, job_id: int, status: str, callback_url: str | None = None) -> httpx.Response | None:
        """Change a job's status; post the callback unless it is 'lost' (callback_url None)."""
        with self.lock:
            previous = self.jobs[job_id]["status"]
            self.jobs[job_id]["status"] = status
        if callback_url is None:
            return None
        body = json.dumps({"status": [previous, status], "job_id": job_id})
        return httpx.post(callback_url, content=body, headers={"content-type": "application/json"})

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f":{self.api_key}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"error": "unauthorized", "verbose": "Invalid API key"}
        parts = [part for part in path.split("/") if part]  # api, 1.0, job, [id]
        with self.lock:
            if parts[-1] == "job":
                return 200, sorted(self.jobs)
            if parts[-2] == "job" and parts[-1].isdigit() and int(parts[-1]) in self.jobs:
                return 200, dict(self.jobs[int(parts[-1])])
        return 404, {"error": "not_found", "verbose": "No such job"}
