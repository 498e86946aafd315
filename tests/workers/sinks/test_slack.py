from __future__ import annotations

import pytest

from workers.messages import render
from workers.sinks.slack import payload
from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.core.exceptions import ConfigError
from workhooks.platforms.wordy import callback as wordy


def test_block_kit_with_plain_text_fallback_and_link() -> None:
    event = Event.from_callback(
        "wordy-main", wordy.parse(b'{"username": "Ed", "message": "a <b> & c", "job_id": 3}', None)
    ).with_phase("in_progress")
    body = payload(event, render(event))
    assert body["text"] == "Wordy job 3: new message from Ed\na <b> & c\nhttps://wordy.com/jobs/3/"
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "Wordy job 3: new message from Ed"}
    assert body["blocks"][1]["text"]["text"] == "a &lt;b&gt; &amp; c"
    assert body["blocks"][2]["elements"][0]["text"] == "Wordy · job/3 · in progress"
    assert body["blocks"][3]["elements"][0]["url"] == "https://wordy.com/jobs/3/"


def slack_settings(url: str, extra: str = "") -> object:
    return parse_config(f"sinks:\n  team: {{type: slack, url: '{url}'{extra}}}\n", {}).sinks["team"]


@pytest.mark.parametrize(
    "url",
    ["https://evil.example/services/T/B/secret123", "http://hooks.slack.com/services/T/B/secret123",
     "https://hooks.slack.com.evil.example/services/T/B/secret123", "https://hooks.slack.com@evil.example/x",
     "https://hooks.slack.com:8443/services/T/B/secret123", "https://127.0.0.1:9/services/T/B/secret123"],
)  # fmt: skip
def test_a_url_not_on_hooks_slack_com_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sinks\.team.*https://hooks\.slack\.com/.*allow_any_host") as error:
        slack_settings(url)
    assert "secret123" not in str(error.value)


def test_hooks_slack_com_is_accepted_and_allow_any_host_opens_other_hosts() -> None:
    assert slack_settings("https://hooks.slack.com/services/T000/B000/XXXX")
    assert slack_settings("https://chat.example.com/hooks/abc", ", allow_any_host: true")
