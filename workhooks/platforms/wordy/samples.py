"""Sample Wordy callbacks, as wordy-api-1.0.txt shows them (JSON, the job id a number)."""

from __future__ import annotations

import json

from workhooks.platforms.base import Samples
from workhooks.platforms.wordy.settings import WordySettings


def body(kind: str, job_id: int) -> tuple[str, bytes]:
    if kind == "status":
        return "application/json", json.dumps({"status": ["acp", "aer"], "job_id": job_id}).encode()
    if kind == "message":
        document = {"username": "Editor", "message": "Job claimed by editor.", "job_id": job_id}
        return "application/json", json.dumps(document).encode()
    raise ValueError(f"no {kind!r} sample for wordy (samples: status, message)")


def request(name: str, settings: WordySettings) -> tuple[str, dict[str, str], str]:
    """(path, headers, path as shown): the callback URL holds the first configured token."""
    token = (settings.token or settings.tokens[0]).get_secret_value()
    return f"/hooks/{name}/{token}", {}, f"/hooks/{name}/<token>"


SAMPLES = Samples(kinds=("status", "message"), body=body, request=request)
