from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import redis
import redis.asyncio
import structlog

from receiver.spool import Spool
from tests.servers import BIN
from workhooks.cli import main
from workhooks.core.events import Event
from workhooks.core.logs import colour_wanted, configure_logging
from workhooks.store import embedded, keys, quarantine
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
    monkeypatch.setenv("SWF_KEY", "swf-key-0123456789ab")
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
    for secret in (TOKEN, "swf-key-0123456789ab", "whsec_", "slacksecret123"):
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


def test_check_refuses_a_webhook_secret_that_is_not_base64_with_its_key_path(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(CONFIG.replace("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not-base64!!"))
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(config)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert re.search(r"sinks\.erp\.(webhook\.)?secret: .*not base64", error) and "not-base64!!" not in error


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


@pytest.fixture
def no_redis_url(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with no REDIS_URL set: what a second terminal next to `make run` has."""
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "command",
    [["events", "list"], ["stats"], ["deliveries"], ["sinks"], ["quarantine", "list"], ["migrate", "--check"]],
)
def test_without_redis_url_and_no_embedded_redis_running_a_command_says_so_and_exits_3(
    no_redis_url: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:  # never redis://127.0.0.1:6379, whatever runs there
        main(command)
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"workhooks: no Redis: REDIS_URL is unset and no embedded Redis runs in {no_redis_url / 'var' / 'redis'} "
        "(start it with 'make run', or set REDIS_URL)"
    ]


def test_without_redis_url_commands_use_the_embedded_redis_of_this_folder_and_say_so(
    no_redis_url: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = embedded.start(no_redis_url / "var" / "redis")
    try:
        item = _quarantine(server.url, "wordy-main", b"{")
        assert main(["quarantine", "list"]) == 0
        out, err = capsys.readouterr()
        assert item in out
        assert err == f"workhooks: using the embedded Redis of this folder ({server.url})\n"
        assert main(["check"]) == 0
        assert f"redis: {server.url}  (the embedded Redis of this folder)" in capsys.readouterr().out
    finally:
        server.process.kill()  # as if `up` had been SIGKILLed: its record stays, nothing answers
        server.process.wait(10)
    with pytest.raises(SystemExit) as exit_info:
        main(["quarantine", "list"])
    assert exit_info.value.code == 3 and "no embedded Redis runs in" in capsys.readouterr().err


def test_send_without_url_and_no_up_running_says_so_and_exits_3(
    no_redis_url: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "wordy-main"]) == 3
    assert "no receiver: no 'workhooks up' runs in this folder" in capsys.readouterr().err


def test_every_command_that_lists_or_shows_prints_one_json_document_with_json(
    config: Path, redis_url: str, rdb: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    event = Event("evt_json1", "wordy-main", "wordy.job.status_changed", "job/7", "2026-11-22T00:00:00Z")
    Ingest().submit_sync(rdb, prepare(event, "application/json", b"{}"))
    item = _quarantine(redis_url, "swf", b"<task", "application/xml")
    documents = {}
    for command in (["events", "list"], ["events", "show", "evt_json1"], ["deliveries"], ["stats"], ["sinks"],
                    ["quarantine", "list"], ["quarantine", "show", item], ["check", str(config)]):  # fmt: skip
        assert main([*command, "--json"]) == 0, command
        documents[" ".join(command[:2])] = json.loads(capsys.readouterr().out)
    assert [found["event"]["id"] for found in documents["events list"]["events"]] == ["evt_json1"]
    assert documents["events show"]["event"]["subject"] == "job/7" and documents["events show"]["attempts"] == []
    assert documents["deliveries"] == {"deliveries": []}
    assert documents["stats"]["queue"]["depth"] >= 1 and documents["stats"]["sinks"]["erp"]["dead"] == 0
    assert [sink["name"] for sink in documents["sinks"]["sinks"]] == ["erp", "console", "team"]
    assert documents["quarantine list"]["quarantined"][0]["id"] == item
    assert documents["quarantine show"]["body"] == "<task"
    assert documents[f"check {config}"]["ok"] is True
    assert [route["to"] for route in documents[f"check {config}"]["routes"]] == [["erp"], ["team"], ["console"]]
    assert "slacksecret123" not in json.dumps(documents)


def test_version_and_quarantine_show_without_an_id_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"workhooks {version('workhooks')}\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["quarantine", "show"])
    assert exit_info.value.code == 2
    assert "usage: workhooks quarantine" in capsys.readouterr().err


def test_output_to_a_reader_that_went_away_ends_quietly(config: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    process = subprocess.Popen([str(BIN / "workhooks"), "check", "--json"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `head` does once it has its lines
    assert process.wait(30) == 141
    assert process.stderr.read() == b""
    process.stderr.close()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [("", True), ("1", False)])
def test_log_lines_on_a_terminal_are_coloured_unless_no_color(
    monkeypatch: pytest.MonkeyPatch, no_color: str, coloured: bool
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("NO_COLOR", no_color)
    try:
        configure_logging()
        structlog.get_logger("test").info("hello", n=1)
    finally:
        structlog.reset_defaults()
    assert "hello" in terminal.getvalue() and ("\x1b[" in terminal.getvalue()) is coloured
    assert colour_wanted(terminal) is coloured and not colour_wanted(io.StringIO())


def test_check_says_who_may_act_from_slack_and_where_the_slack_app_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "workhooks.yaml"
    path.write_text("""
sources:
  wordy-main:
    platform: wordy
    token: wordy-token-0123456789abcdef
    api_key: wordy-key-0123456789abcdef
    actions: {allow: {slack_users: [U0123ABCD]}}
  quiet: {platform: wordy, token: wordy-token-0123456789abcdeg, api_key: wordy-key-0123456789abcdeg}
sinks:
  team: {type: slack_app, bot_token: xoxb-1-2-abcdefabcdef, signing_secret: 0123456789abcdef0123, channel: C0456EFGH}
routes: [{to: [team]}]
""")
    assert main(["check", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "wordy-main           from Slack: confirm, reject, reply; off until named (it spends money): pay" in shown
    assert "quiet                from Slack: nobody (actions.allow is empty)" in shown
    assert "the Slack app's Request URL: POST /slack/actions" in shown
    assert "xoxb-1-2" not in shown
