"""Sample callbacks for `workhooks send`: what Wordy and Shared Workforce really post (platform docs)."""

from __future__ import annotations

import json
import random

from receiver.config import SharedWorkforceSource, Source, WordySource

SAMPLES = {
    "wordy": ("status", "message"),
    "sharedworkforce": ("task",),
}


def body(platform: str, kind: str, subject_id: int | None = None) -> tuple[str, bytes]:
    """(content type, body) of a sample callback; a random job/task id unless one is given."""
    number = subject_id if subject_id is not None else random.randint(100_000, 999_999)
    if platform == "wordy" and kind == "status":
        return "application/json", json.dumps({"status": ["acp", "aer"], "job_id": number}).encode()
    if platform == "wordy" and kind == "message":
        document = {"username": "Editor", "message": "Job claimed by editor.", "job_id": number}
        return "application/json", json.dumps(document).encode()
    if platform == "sharedworkforce" and kind == "task":
        task = {"id": number, "title": "Remove offensive language", "callback_params": {"sample": True},
                "responses": [{"answer": "Looks clean.", "id": f"r{number}"}]}  # fmt: skip
        return "application/json", json.dumps({"task": task}).encode()
    raise ValueError(f"no {kind!r} sample for {platform} (samples: {', '.join(SAMPLES.get(platform, ()))})")


def request(name: str, source: Source) -> tuple[str, dict[str, str], str]:
    """(path, headers, path as shown) authenticated with the source's first configured secret."""
    if isinstance(source, WordySource):
        token = (source.token or source.tokens[0]).get_secret_value()
        return f"/hooks/{name}/{token}", {}, f"/hooks/{name}/<token>"
    if isinstance(source, SharedWorkforceSource):
        key = (source.api_key or source.api_keys[0]).get_secret_value()
        return f"/hooks/{name}", {"x-api-key": key}, f"/hooks/{name}"
    raise ValueError(f"{name} is a {source.platform} source: it is polled, it does not call back")
