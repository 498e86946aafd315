"""A sample Shared Workforce callback: a task with one response, as the official client posted it."""

from __future__ import annotations

import json

from workhooks.platforms.base import Samples
from workhooks.platforms.sharedworkforce.settings import SharedWorkforceSettings


def body(kind: str, task_id: int) -> tuple[str, bytes]:
    if kind == "task":
        task = {"id": task_id, "title": "Remove offensive language", "callback_params": {"sample": True},
                "responses": [{"answer": "Looks clean.", "id": f"r{task_id}"}]}  # fmt: skip
        return "application/json", json.dumps({"task": task}).encode()
    raise ValueError(f"no {kind!r} sample for sharedworkforce (samples: task)")


def request(name: str, settings: SharedWorkforceSettings) -> tuple[str, dict[str, str], str]:
    """(path, headers, path as shown), authenticated with the first configured key."""
    key = (settings.api_key or settings.api_keys[0]).get_secret_value()
    return f"/hooks/{name}", {"x-api-key": key}, f"/hooks/{name}"


SAMPLES = Samples(kinds=("task",), body=body, request=request)
