"""The operator's loop through real processes: send a sample, find it, see it delivered, read the stats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import KEY, TOKEN, CaptureServer, Service, wait_until

pytestmark = pytest.mark.slow


def config(sink: CaptureServer) -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
  orders: {{platform: workreduce, api_key: wr-key-0123456789, base_url: "http://127.0.0.1:9/api"}}
sinks:
  erp: {{type: webhook, url: "{sink.url}", allow_private: true, retry_intervals: []}}
routes:
  - to: [erp]
"""


def test_send_a_sample_then_find_it_delivered_in_events_list_and_stats(
    start: Callable[[str], Service], sink_server: CaptureServer, tmp_path: Path
) -> None:
    service = start(config(sink_server))
    url = f"--url={service.base}"
    sent = service.cli("send", "wordy-main", "--id", "4242", url)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("POST /hooks/wordy-main/<token> (application/json, ") and "-> 202" in sent.stdout
    event_id = json.loads(sent.stdout.splitlines()[1])["id"]
    assert TOKEN not in sent.stdout + sent.stderr

    body = tmp_path / "task.json"
    body.write_text(json.dumps({"task": {"id": 77, "responses": [{"answer": "ok", "id": "r1"}]}}))
    assert service.cli("send", "swf", str(body), url).returncode == 0
    wait_until(lambda: len(sink_server.requests) == 2, what="both delivered")
    sink_server.status = 400  # the next one is refused for good: a dead letter
    assert service.cli("send", "wordy-main", "--sample", "message", "--id", "4242", url).returncode == 0
    wait_until(lambda: "dead" in service.cli("events", "list", "--status", "dead").stdout, what="a dead letter")

    wait_until(lambda: "workhooks.delivery.dead" in service.cli("events", "list").stdout, what="the dead letter told")
    listed = service.cli("events", "list")
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and len(lines) == 4  # three callbacks, and the dead letter announced
    refused = next(line for line in lines if "wordy.job.message_added" in line)
    assert " dead " in refused and "erp:dead" in refused
    mine = service.cli("events", "list", "--subject", "job/4242", "--type", "wordy.job.status_*")
    assert [line.split()[2] for line in mine.stdout.splitlines()] == [event_id]
    assert "delivered" in mine.stdout and "in_progress" in mine.stdout
    assert service.cli("events", "list", "--source", "swf", "--status", "delivered").stdout.count("\n") == 1
    none = service.cli("events", "list", "--source", "swf", "--since", "2099-01-01T00:00:00Z")
    assert (none.returncode, none.stdout, none.stderr.strip()) == (1, "", "0 events")

    stats = service.cli("stats")
    assert stats.returncode == 0, stats.stderr
    assert "erp                  delivered 2, failed 0, dead 1" in stats.stdout
    assert "events       4 in the last 5 min" in stats.stdout
    assert "dead letters 1 (1 in the last hour)" in stats.stdout

    refused = service.cli("send", "orders", url)
    assert refused.returncode == 2 and "polled, it does not call back" in refused.stderr
    down = service.cli("send", "wordy-main", "--url=http://127.0.0.1:9")
    assert down.returncode == 3 and "is the receiver running?" in down.stderr


def test_cli_says_redis_is_unreachable_with_exit_3(start: Callable[[str], Service], sink_server: CaptureServer) -> None:
    service = start(config(sink_server))
    service.env["REDIS_URL"] = "redis://:hunter2@127.0.0.1:9/0"
    for command in (["stats"], ["events", "list"], ["deliveries"]):
        result = service.cli(*command)
        assert result.returncode == 3, (command, result.stderr)
        assert "cannot reach Redis at redis://:***@127.0.0.1:9/0" in result.stderr and "hunter2" not in result.stderr
