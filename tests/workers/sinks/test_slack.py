from __future__ import annotations

import re
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from workers.messages import Message, render
from workers.sinks.slack import HEADER_LIMIT, TEXT_LIMIT, fit, payload
from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.core.exceptions import ConfigError
from workhooks.core.mrkdwn import escape
from workhooks.platforms.wordy import callback as wordy


def test_block_kit_with_plain_text_fallback_and_link() -> None:
    event = Event.from_callback(
        "wordy-main", wordy.parse(b'{"username": "Ed", "message": "a <b> & c", "job_id": 3}', None)
    ).with_phase("in_progress")
    body = payload(event, render(event))
    assert body["text"] == "Wordy job 3: new message from Ed\na &lt;b&gt; &amp; c\nhttps://wordy.com/jobs/3/"
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "Wordy job 3: new message from Ed"}
    assert body["blocks"][1]["text"]["text"] == "a &lt;b&gt; &amp; c"
    assert body["blocks"][2]["elements"][0]["text"] == "Wordy · job/3 · in progress"
    assert body["blocks"][3]["elements"][0]["url"] == "https://wordy.com/jobs/3/"
    assert_within_slack_limits(body)


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


# Block Kit's limits checked twice: by slack_sdk's models (what Slack documents), and here directly for
# what they do not check (entities never split, limits counted after escaping, in UTF-16 units).
WHOLE_ENTITIES = re.compile(r"&(?!(amp|lt|gt);)|[<>]")
EVENT = Event.from_callback("wordy-main", wordy.parse(b'{"status": ["aer", "acr"], "job_id": 9}', None))


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_within_slack_limits(body: dict[str, Any]) -> None:
    for block in Block.parse_all(body["blocks"]):
        block.validate_json()  # raises SlackObjectFormationError past a limit
    assert not WHOLE_ENTITIES.search(body["text"])
    for block in body["blocks"]:
        if block["type"] == "header":
            assert 0 < units(block["text"]["text"]) <= HEADER_LIMIT
        texts = [block["text"]] if block["type"] == "section" else []
        texts += block["elements"] if block["type"] == "context" else []
        for text in texts:
            assert text["type"] == "mrkdwn" and 0 < units(text["text"]) <= TEXT_LIMIT
            assert not WHOLE_ENTITIES.search(text["text"])


@pytest.mark.parametrize(
    "body",
    ["a <b> & c", "&" * 3000, "<>" * 1500, "x" * 2998 + "&&", "x" * 2997 + "<" * 3, "😀" * 3000, "é&" * 1500, ""],
)
def test_every_payload_stays_within_slack_limits_and_never_splits_an_entity(body: str) -> None:
    message = Message(title="T" * 300 + "&", body=body, link="https://wordy.com/jobs/9/", platform="Wordy")
    built = payload(EVENT, message)
    assert_within_slack_limits(built)
    if body:
        section = built["blocks"][1]["text"]["text"]
        assert escape(body).startswith(section.removesuffix("…"))  # escaped first, then cut


def test_escaped_text_is_cut_before_an_entity_it_would_split() -> None:
    assert fit("ab&amp;", 6) == "ab…"
    assert fit("ab&amp;cd", 8) == "ab&amp;…"
    assert fit("abc", 3) == "abc"
    assert fit("😀😀😀", 4) == "😀…"  # an astral character counts two, as Slack's UTF-16 does


def test_slack_sdks_models_refuse_what_cutting_before_escaping_built() -> None:
    from slack_sdk.errors import SlackObjectFormationError

    cut_then_escaped = escape(("a&" * 1500)[:TEXT_LIMIT])  # the old order: 3,000 characters, then 4,500
    with pytest.raises(SlackObjectFormationError, match="3000"):
        Block.parse({"type": "section", "text": {"type": "mrkdwn", "text": cut_then_escaped}}).validate_json()  # type: ignore[union-attr]
    message = Message(title="T", body="a&" * 1500, link=None, platform="Wordy")
    assert_within_slack_limits(payload(EVENT, message))  # the order now: escaped, then cut
