"""schemathesis against the live receiver: no 5xx, every answer conforms to /openapi.json."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx
import pytest

from tests.servers import BIN, KEY, TOKEN, Service

pytestmark = pytest.mark.slow

CONFIG = f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
sinks: {{console: {{type: log}}}}
routes: [{{to: [console]}}]
receiver:
  max_body_bytes: 65536
  failure_limit: {{per_minute: 0}}   # fuzzing fails on purpose; let it reach the parsers
"""


def test_openapi_names_this_deployments_sources(start: Callable[[str], Service]) -> None:
    spec = httpx.get(start(CONFIG).base + "/openapi.json").json()
    wordy = spec["paths"]["/hooks/{source}/{token}"]["post"]["parameters"][0]["schema"]
    assert wordy == {"type": "string", "enum": ["wordy-main"]}
    assert (
        "application/vnd.com.sharedworkforce.text+xml"
        in spec["paths"]["/hooks/{source}"]["post"]["requestBody"]["content"]
    )


def test_schemathesis_finds_no_server_error_and_no_schema_violation(start: Callable[[str], Service]) -> None:
    service = start(CONFIG)
    result = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{service.base}/openapi.json", "--checks", "all",
         "--max-examples", "60", "--request-timeout", "10", "--seed", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
    assert "Traceback" not in service.web.output()
