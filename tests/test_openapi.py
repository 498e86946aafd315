"""/openapi.json held against the live server: schemathesis finds no 5xx and no undocumented status,
content type, header or field, with credentials (so callback bodies are parsed) and the admin API on.

Every conformance check runs. Left out: the checks that expect a JSON Schema to predict which
bodies a handler accepts (positive_data_acceptance, negative_data_rejection: an XML body is a
string to JSON Schema, and a well-typed callback about an unknown status is still refused and
quarantined, as documented), and the stateful ones that follow a 202's id to another operation
(an accepted callback creates no resource to GET).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.servers import BIN, KEY, TOKEN, Service

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "openapi-admin-token-0123456789"
CONFIG = f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
  wr: {{platform: workreduce, api_key: wr-key, poll_interval: 3600}}
sinks:
  console: {{type: log}}
  team: {{type: slack_app, bot_token: xoxb-0-0-openapi, signing_secret: openapi-signing-secret-0123, channel: C0456EFGH,
          base_url: "http://127.0.0.1:9/api/", allow_private: true}}
  mail: {{type: email, url: "smtp://127.0.0.1:9", tls: none, from: a@example.com, to: [b@example.com],
          action_links: {{base_url: "http://127.0.0.1:8000", secret: openapi-link-secret-0123456789abcdef01234}}}}
routes: [{{to: [console]}}]
admin: {{token: {ADMIN_TOKEN}}}
receiver:
  max_body_bytes: 65536
"""
LIMITS = {  # workhooks.yaml's receiver settings, and the checks that cannot hold under them
    # The default failure limiter (20 failures at once, 60 a minute): once it throttles, a request
    # without credentials gets 429, not 401, so the two authentication checks run in the other run.
    "production": ("", ",missing_required_header,ignored_auth"),
    "off": ("  failure_limit: {per_minute: 0}\n", ""),  # let every fuzzed body reach the parsers
}
EXCLUDED = "positive_data_acceptance,negative_data_rejection,ensure_resource_availability,use_after_free"
SCHEMATHESIS = f"""
headers = {{ Authorization = "Bearer {ADMIN_TOKEN}" }}

[parameters]
"path.token" = "{TOKEN}"
"header.X-API-Key" = "{KEY}"
"""


def test_openapi_names_this_deployments_sources(start: Callable[[str], Service]) -> None:
    spec = httpx.get(start(CONFIG).base + "/openapi.json").json()
    wordy = spec["paths"]["/hooks/{source}/{token}"]["post"]["parameters"][0]["schema"]
    assert wordy == {"type": "string", "enum": ["wordy-main"]}
    assert spec["paths"]["/hooks/{source}"]["post"]["parameters"][0]["schema"] == {"type": "string", "enum": ["swf"]}
    assert (
        "application/vnd.com.sharedworkforce.text+xml"
        in spec["paths"]["/hooks/{source}"]["post"]["requestBody"]["content"]
    )
    assert "/admin/api/events" in spec["paths"]


def test_starlettes_own_refusals_are_json_like_ours(start: Callable[[str], Service]) -> None:
    base = start(CONFIG).base
    for response in (
        httpx.get(base + "/no/such/route"),
        httpx.get(base + "/hooks/swf"),  # the wrong method
        httpx.post(base + f"/hooks/wordy-main/{TOKEN}", content=iter([b"x" * 70_000])),  # chunked, over the limit
    ):
        assert response.status_code in (404, 405, 413)
        assert response.headers["content-type"] == "application/json" and set(response.json()) == {"error"}


@pytest.mark.parametrize("limits", list(LIMITS))
def test_schemathesis_finds_no_server_error_and_nothing_undocumented(
    start: Callable[[str], Service], tmp_path: Path, limits: str
) -> None:
    settings_text, excluded = LIMITS[limits]
    service = start(CONFIG + settings_text)
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(SCHEMATHESIS)
    result = subprocess.run(
        [str(BIN / "schemathesis"), "--config-file", str(settings), "run", f"{service.base}/openapi.json",
         "--checks", "all", "--exclude-checks", EXCLUDED + excluded, "--max-examples", "40", "--request-timeout", "10",
         "--seed", "1"],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout
    assert "Traceback" not in service.web.output()
