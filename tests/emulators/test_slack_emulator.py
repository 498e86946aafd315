"""The Slack emulator itself, driven by slack_sdk's WebClient and SignatureVerifier over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from tests.emulators.slack import SlackApi, block_action, sign, text_input, view_submission

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
GENERAL = "C0000000001"
MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Reject"}, "blocks": []}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> Iterator[SlackApi]:
    emulator = SlackApi(clock=clock).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(api: SlackApi) -> WebClient:
    return WebClient(token=api.token, base_url=api.base_url, timeout=5)


def error_of(call: object) -> SlackApiError:
    assert isinstance(call, SlackApiError)
    return call


def test_auth_test_names_the_bot_and_the_token_is_recorded_apart(api: SlackApi, client: WebClient) -> None:
    answer = client.auth_test()
    assert answer["user_id"] == api.bot_user_id and answer["team_id"] == api.team_id
    [call] = api.calls("auth.test")
    assert (call.token, call.token_in) == (api.token, "header")
    assert "authorization" not in call.headers


def test_post_message_answers_channel_ts_and_message(api: SlackApi, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Job 101* delivered"}}]
    first = client.chat_postMessage(channel="#general", text="Job 101 delivered", blocks=blocks)
    second = client.chat_postMessage(channel=GENERAL, text="again", unfurl_links=False)
    assert first["channel"] == GENERAL and re.fullmatch(r"\d{10}\.\d{6}", first["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == blocks and first["message"]["bot_id"] == api.bot_id
    assert [m["text"] for m in api.messages(GENERAL)] == ["Job 101 delivered", "again"]
    assert api.calls("chat.postMessage")[1].args["unfurl_links"] is False


def test_replies_land_in_the_thread_and_count_on_the_parent(api: SlackApi, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=GENERAL, text="parent")["ts"]
    client.chat_postMessage(channel=GENERAL, text="reply", thread_ts=parent)
    loud = client.chat_postMessage(channel=GENERAL, text="broadcast", thread_ts=parent, reply_broadcast=True)
    assert loud["message"]["thread_ts"] == parent
    assert [m["text"] for m in api.thread(GENERAL, parent)] == ["parent", "reply", "broadcast"]
    assert [m["text"] for m in api.messages(GENERAL)] == ["parent", "broadcast"]
    head = api.parent(GENERAL, parent)
    assert head is not None and head["reply_count"] == 2 and head["latest_reply"] == loud["ts"]
    assert head["thread_ts"] == parent and len(head["replies"]) == 2


def test_reply_to_an_unknown_parent_is_ok_but_seen_nowhere(api: SlackApi, client: WebClient) -> None:
    answer = client.chat_postMessage(channel=GENERAL, text="orphan", thread_ts="1600000000.000100")
    assert answer["ok"] and api.messages(GENERAL) == []
    assert [m["text"] for m in api.thread(GENERAL, "1600000000.000100")] == ["orphan"]
    with pytest.raises(SlackApiError) as bad:
        client.chat_postMessage(channel=GENERAL, text="x", thread_ts="0")
    assert bad.value.response["error"] == "invalid_thread_ts"


def test_update_replaces_text_and_keeps_blocks(api: SlackApi, client: WebClient) -> None:
    blocks = [{"type": "divider"}]
    ts = client.chat_postMessage(channel=GENERAL, text="old", blocks=blocks)["ts"]
    answer = client.chat_update(channel=GENERAL, ts=ts, text="new")
    assert answer["ts"] == ts and answer["text"] == "new" and answer["message"]["blocks"] == blocks
    assert api.messages(GENERAL)[0]["edited"]["user"] == api.bot_user_id


def test_update_of_a_deleted_or_foreign_message_fails(api: SlackApi, client: WebClient) -> None:
    deleted = client.chat_postMessage(channel=GENERAL, text="soon gone")["ts"]
    client.chat_delete(channel=GENERAL, ts=deleted)
    removed = client.chat_postMessage(channel=GENERAL, text="removed by hand")["ts"]
    api.delete(GENERAL, removed)
    person = api.add_message(GENERAL, "a person's message")
    expected = {deleted: "message_not_found", removed: "message_not_found", "1.2": "message_not_found"}
    expected[person] = "cant_update_message"
    for ts, error in expected.items():
        with pytest.raises(SlackApiError) as refused:
            client.chat_update(channel=GENERAL, ts=ts, text="edit")
        assert refused.value.response.status_code == 200 and refused.value.response["error"] == error


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "C0NOPE", "text": "x"}, "channel_not_found"),
        ({"channel": GENERAL}, "no_text"),
        ({"channel": GENERAL, "text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        (
            {"channel": GENERAL, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3001}}]},
            "invalid_blocks",
        ),
    ],
)
def test_post_message_errors(client: WebClient, kwargs: dict[str, Any], error: str) -> None:
    warns = pytest.warns(UserWarning, match="`text` argument is missing") if "text" not in kwargs else nullcontext()
    with pytest.raises(SlackApiError) as refused, warns:
        client.chat_postMessage(**kwargs)
    assert refused.value.response["error"] == error


def test_auth_errors(api: SlackApi) -> None:
    for token, error in ((None, "not_authed"), ("xoxb-someone-else", "invalid_auth")):
        with pytest.raises(SlackApiError) as refused:
            WebClient(token=token, base_url=api.base_url).chat_postMessage(channel=GENERAL, text="x")
        assert refused.value.response["error"] == error
    narrow = SlackApi(scopes=()).start()
    try:
        with pytest.raises(SlackApiError) as refused:
            WebClient(token=narrow.token, base_url=narrow.base_url).chat_postMessage(channel=GENERAL, text="x")
        assert refused.value.response["error"] == "missing_scope" and refused.value.response["needed"] == "chat:write"
    finally:
        narrow.stop()


def test_form_encoded_call_with_a_token_field(api: SlackApi) -> None:
    form = {"token": api.token, "channel": GENERAL, "text": "form", "blocks": '[{"type": "divider"}]'}
    answer = httpx.post(f"{api.base_url}chat.postMessage", data=form, timeout=5).json()
    assert answer["ok"] and answer["message"]["blocks"] == [{"type": "divider"}]
    assert api.calls("chat.postMessage")[0].token_in == "form"


def test_post_ephemeral_answers_message_ts(api: SlackApi, client: WebClient) -> None:
    answer = client.chat_postEphemeral(channel=GENERAL, user="U0000000001", text="only you")
    assert api.ephemerals(GENERAL)[0]["message_ts"] == answer["message_ts"]
    assert api.messages(GENERAL) == []


def test_views_open_takes_a_fresh_trigger_once(api: SlackApi, client: WebClient, clock: Clock) -> None:
    trigger = api.issue_trigger()
    view = client.views_open(trigger_id=trigger, view={**MODAL, "callback_id": "reject", "private_metadata": "101"})
    assert view["view"]["id"].startswith("V") and view["view"]["callback_id"] == "reject"
    stale = api.issue_trigger()
    clock.now += 3.1
    for used, error in (
        (trigger, "exchanged_trigger_id"),
        (stale, "expired_trigger_id"),
        ("123.456", "invalid_trigger_id"),
    ):
        with pytest.raises(SlackApiError) as refused:
            client.views_open(trigger_id=used, view=MODAL)
        assert refused.value.response["error"] == error


def test_every_nth_call_is_a_429_with_retry_after(clock: Clock) -> None:
    api = SlackApi(rate_limit_every=2, retry_after=7, clock=clock).start()
    try:
        client = WebClient(token=api.token, base_url=api.base_url)
        client.auth_test()
        with pytest.raises(SlackApiError) as limited:
            client.auth_test()
        assert limited.value.response.status_code == 429 and limited.value.response["error"] == "ratelimited"
        assert limited.value.response.headers["Retry-After"] in ("7", ["7"])
        client.auth_test()
    finally:
        api.stop()


def test_retry_handler_waits_out_the_per_channel_limit() -> None:
    api = SlackApi(per_second={"chat.postMessage": 1}).start()
    try:
        client = WebClient(token=api.token, base_url=api.base_url, retry_handlers=[RateLimitErrorRetryHandler(1)])
        client.chat_postMessage(channel=GENERAL, text="one")
        client.chat_postMessage(channel="C0000000002", text="other channel, own window")
        started = time.monotonic()
        client.chat_postMessage(channel=GENERAL, text="two")
        assert time.monotonic() - started >= 1.0
        assert [call.status for call in api.calls("chat.postMessage")] == [200, 200, 429, 200]
    finally:
        api.stop()


def test_sign_is_v0_hmac_sha256() -> None:
    # the worked example of Slack's "Verifying requests from Slack" guide
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign(SECRET, 1531420618, body) == expected


def test_signature_verifier_accepts_block_actions_and_refuses_tampering(api: SlackApi, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=GENERAL, text="Approve job 101?")["ts"]
    body, headers = click = block_action(SECRET, api, message_ts=ts, action_id="approve", value="101")
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body.replace(b"101", b"102"), headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    payload = click.payload
    assert payload["type"] == "block_actions" and payload["container"]["message_ts"] == ts
    assert payload["message"]["text"] == "Approve job 101?" and payload["actions"][0]["value"] == "101"
    assert client.views_open(trigger_id=payload["trigger_id"], view=MODAL)["ok"]
    old = block_action(SECRET, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(old.body, old.headers)


def test_view_submission_carries_the_opened_view_and_state(api: SlackApi, client: WebClient) -> None:
    client.views_open(
        trigger_id=api.issue_trigger(), view={**MODAL, "callback_id": "reject", "private_metadata": "101"}
    )
    values = {"reason": {"reason_input": text_input("too short")}}
    body, headers = sent = view_submission(SECRET, api, state_values=values, retry=(1, "http_timeout"))
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert headers["X-Slack-Retry-Num"] == "1" and headers["X-Slack-Retry-Reason"] == "http_timeout"
    view = sent.payload["view"]
    assert view["id"] == api.views[-1]["view"]["id"] and view["callback_id"] == "reject"
    assert view["private_metadata"] == "101" and view["state"]["values"] == values
