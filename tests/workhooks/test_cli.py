from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
import redis.asyncio

from receiver.spool import Spool
from workhooks.cli import main
from workhooks.core.events import Event
from workhooks.store import keys, quarantine
from workhooks.store.ingest import Ingest, prepare

TOKEN = "cli-wordy-token-0123456789"
CONFIG = f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: "${{SWF_KEY}}"}}
sinks:
  erp: {{type: webhook, url: "http://127.0.0.1:9/x", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}
  console: {{type: log}}
  team: {{type: slack, url: "https://hooks.slack.com/services/T000/B000/slacksecret123"}}
routes:
  - match: {{source: wordy-main, phase: awaiting_client}}
    to: [erp]
  - match: {{type: "wordy.*"}}
    to: [team]
    template: {{title: "Job {{{{ data.job_id }}}} needs you"}}
    continue: false
  - to: [console]
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Path:
    path = tmp_path / "workhooks.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
    monkeypatch.setenv("SWF_KEY", "swf-key-123")
    monkeypatch.setenv("REDIS_URL", redis_url)
    return path


def test_check_prints_callback_urls_sinks_and_routes(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "POST /hooks/wordy-main/<token>" in out
    assert "POST /hooks/swf" in out
    assert "http://127.0.0.1:9/x  (signed)" in out
    assert "1. source=wordy-main phase=awaiting_client -> erp" in out
    assert "2. type=wordy.* -> team  (continue: false)" in out
    assert "3. (every event) -> console" in out
    assert "team                 slack            https://hooks.slack.com/… (URL hidden)" in out
    assert (
        "wordy-main           wordy.job.status_changed                   -> erp if phase=awaiting_client, team" in out
    )
    assert "swf                  sharedworkforce.task.responses_received    -> console" in out
    for secret in (TOKEN, "swf-key-123", "whsec_", "slacksecret123"):
        assert secret not in out


def test_route_explains_one_sample_event(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "event.json"
    sample.write_text(
        '{"specversion": "1.0", "id": "evt_1", "source": "/sources/wordy-main", "type": "wordy.job.status_changed",'
        ' "subject": "job/9", "time": "2026-01-01T00:00:00Z", "phase": "in_progress",'
        ' "data": {"job_id": 9, "previous_status": "acp", "previous_status_label": "awaiting customer payment",'
        ' "status": "aer", "status_label": "awaiting editor response"}}'
    )
    assert main(["route", "--event", str(sample)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "event wordy.job.status_changed job/9 from wordy-main (phase in_progress)",
        "route 1: no match: phase is 'in_progress', wanted 'awaiting_client'",
        "route 2: match -> team",
        "route 3: not reached (an earlier route has continue: false)",
        "sinks: team",
        "  team: Job 9 needs you",
    ]


def test_check_reports_errors_with_key_paths(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWF_KEY")
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(config)])
    assert exit_info.value.code == 2
    assert "sources.swf.api_key: environment variable SWF_KEY is not set" in capsys.readouterr().err


def test_check_shows_redis_url_without_its_password_and_refuses_a_malformed_one(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis+sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26379/mymaster/0")
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "redis: redis+sentinel://:***@10.0.0.1:26379,10.0.0.2:26379/mymaster/0" in out and "hunter2" not in out
    monkeypatch.setenv("REDIS_URL", "redis+sentinel://10.0.0.1:26379")
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(config)])
    assert exit_info.value.code == 2
    assert "REDIS_URL: Sentinel URL: redis+sentinel://host:port" in capsys.readouterr().err


def _quarantine(redis_url: str, source: str, body: bytes, content_type: str = "application/json") -> str:
    async def put() -> str:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await quarantine.put(client, source, "test", content_type, body)
        finally:
            await client.aclose()

    return asyncio.run(put())


def test_quarantine_list_show_and_replay_once_the_body_parses(
    config: Path, redis_url: str, rdb: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    still_bad = _quarantine(redis_url, "wordy-main", b'{"status": ["aer", 5], "job_id": 5}')
    now_good = _quarantine(redis_url, "wordy-main", b'{"status": ["aer", "acr"], "job_id": 5}')
    assert main(["quarantine", "list"]) == 0
    listing = capsys.readouterr().out
    assert still_bad in listing and now_good in listing and "2 quarantined" in listing
    assert main(["quarantine", "show", now_good]) == 0
    assert '"job_id": 5' in capsys.readouterr().out

    assert main(["quarantine", "replay"]) == 1  # one still fails
    out = capsys.readouterr().out
    assert f"{still_bad}: still cannot be parsed: a Wordy status is a short text, not '5'" in out
    assert f"{now_good}: queued as evt_" in out
    assert rdb.llen(keys.INBOX) == 1
    assert [item.id for item in quarantine.list_items(rdb)] == [still_bad]


def test_spool_depth_and_drain_a_folder_a_dead_receiver_left(
    config: Path, tmp_path: Path, rdb: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    left = Spool(tmp_path / "left-behind")
    events = [Event(f"evt_{n}", "wordy-main", "wordy.job.status_changed", f"job/{n}", "2026-11-22T00:00:00Z")
              for n in range(3)]  # fmt: skip
    for event in [*events, events[0]]:  # the platform retried one while Redis was away
        left.append(prepare(event, "application/json", b"{}"))
    left.close()  # the receiver died: its file is unlocked now
    Ingest().submit_sync(rdb, prepare(events[1], "application/json", b"{}"))  # one reached Redis before

    assert main(["spool", "depth", str(tmp_path / "left-behind")]) == 0
    assert "4 callbacks waiting" in capsys.readouterr().out
    assert main(["spool", "drain", str(tmp_path / "left-behind")]) == 0
    assert "2 callbacks queued, 2 already in Redis" in capsys.readouterr().out
    assert rdb.llen(keys.INBOX) == 3 and list((tmp_path / "left-behind").iterdir()) == []
