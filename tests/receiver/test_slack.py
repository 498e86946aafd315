"""POST /slack/actions and /act/{token} through the real app and a real Redis: what is refused, and why.

Requests are made the way Slack makes them (tests/emulators/slack.py, from Slack's documents); the
Slack Web API the receiver calls (views.open, chat.postEphemeral) is that emulator on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog
from starlette.testclient import TestClient

from receiver.app import create_app
from tests.emulators.slack import SlackApi, block_action, sign, signed, text_input, view_submission
from workhooks.config.loading import parse_config
from workhooks.core import links
from workhooks.store import actions, keys

TOKEN = "wordy-token-0123456789abcdef"
BOT = "xoxb-1111111111-2222222222222-receivertests"
SIGNING = "receiver-signing-secret-0123456789"
LINKS = "link-secret-0123456789abcdef0123456789abcdef"
ALICE, CHANNEL, OTHER, TEAM = "U0123ABCD", "C0456EFGH", "C0999OTHR", "T0000000001"


@pytest.fixture
def slack() -> Iterator[SlackApi]:
    api = SlackApi(token=BOT, channels={CHANNEL: "work", OTHER: "elsewhere"}).start()
    yield api
    api.stop()


@pytest.fixture
def client(redis_url: str, tmp_path: Path, slack: SlackApi, rdb: redis.Redis) -> Iterator[TestClient]:
    config = parse_config(f"""
sources:
  wordy-main:
    platform: wordy
    token: {TOKEN}
    api_key: wordy-api-key-0123456789abcdef
    actions: {{allow: {{slack_users: [{ALICE}], slack_channels: [{CHANNEL}]}}}}
sinks:
  team: {{type: slack_app, bot_token: {BOT}, signing_secret: {SIGNING}, channel: {CHANNEL},
          base_url: "{slack.base_url}", allow_private: true}}
  mail: {{type: email, url: "smtp://127.0.0.1:2525", tls: none, from: a@example.com, to: [b@example.com],
          action_links: {{base_url: "http://127.0.0.1:8000", secret: {LINKS}}}}}
routes:
  - to: [team]
receiver:
  spool_dir: {tmp_path / "spool"}
  failure_limit: {{per_minute: 0}}
""", {})  # fmt: skip
    state = {"subject": "job/7", "source": "wordy-main", "events": ["evt_1"], "status": "acr",
             "stay": {"phase": "awaiting_client", "status": "acr", "since": time.time(), "entry": "evt_1"}}  # fmt: skip
    rdb.set(keys.state("wordy-main", "job/7"), json.dumps(state))
    with TestClient(create_app(config, redis_url)) as test_client:
        yield test_client


def value(action: str, stay: str = "evt_1") -> str:
    return json.dumps({"s": "wordy-main", "j": "job/7", "a": action, "y": stay}, separators=(",", ":"))


def send(client: TestClient, request: Any, **extra: str) -> tuple[Any, list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        answer = client.post("/slack/actions", content=request.body, headers={**request.headers, **extra})
    return answer, [line for line in logs if line["event"] == "request"]


def test_forged_replayed_and_malformed_signatures_are_401_with_a_reason_and_never_a_500(client: TestClient) -> None:
    good = block_action(SIGNING, action_id="workhooks.confirm", value=value("confirm"), user_id=ALICE)
    forged = block_action("not-our-signing-secret-at-all", action_id="workhooks.confirm", value=value("confirm"))
    old = block_action(SIGNING, action_id="workhooks.confirm", value=value("confirm"), timestamp=int(time.time()) - 600)
    cases: dict[str, dict[str, Any]] = {
        "another secret": forged.headers,
        "ten minutes old": old.headers,
        "no signature": {k: v for k, v in good.headers.items() if k != "X-Slack-Signature"},
        "non-ASCII signature": {**good.headers, "X-Slack-Signature": ("v0=" + "é" * 64).encode("latin-1")},
        "timestamp not a number": {**good.headers, "X-Slack-Request-Timestamp": "12e3"},
        "a digit too many": {**good.headers, "X-Slack-Request-Timestamp": "9" * 40},
    }
    for what, headers in cases.items():
        body = {"another secret": forged.body, "ten minutes old": old.body}.get(what, good.body)
        with structlog.testing.capture_logs() as logs:
            answer = client.post("/slack/actions", content=body, headers=headers)
        assert answer.status_code == 401, what
        (line,) = [entry for entry in logs if entry["event"] == "request"]
        assert line["outcome"] == "rejected" and line["reason"] == answer.json()["error"], what
    tampered = good.body.replace(b"confirm", b"reject_")
    assert client.post("/slack/actions", content=tampered, headers=good.headers).status_code == 401


def test_signed_requests_that_are_not_our_interactions_are_400_with_the_reason(client: TestClient) -> None:
    def signed_body(body: bytes) -> dict[str, str]:
        now = str(int(time.time()))
        return {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign(SIGNING, now, body),
                "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip

    deep = b"payload=" + b"%5B" * 5000  # signed, and nested past the JSON parser's recursion limit
    for body in (b"payload=not-json", b"no=payload", b"\xff\xfe", b"payload=%5B1%5D", b"payload=" + b"%7B" * 3, deep):
        answer = client.post("/slack/actions", content=body, headers=signed_body(body))
        assert answer.status_code == 400 and answer.json()["error"], body
    strangers = (("approve", "yes"), ("workhooks.confirm", "yes"), ("workhooks.confirm", value("burn")),
                 ("workhooks.reject", value("confirm")))  # fmt: skip
    for action_id, button_value in strangers:
        answer, _ = send(client, block_action(SIGNING, action_id=action_id, value=button_value, user_id=ALICE))
        assert answer.status_code == 400, (action_id, button_value)
    untriggered = block_action(SIGNING, action_id="workhooks.confirm", value=value("confirm"), user_id=ALICE).payload
    del untriggered["trigger_id"]
    assert send(client, signed(SIGNING, untriggered))[0].status_code == 400
    wrong_view = view_submission(SIGNING, callback_id="someone_elses", private_metadata=value("reply"))
    assert send(client, wrong_view)[0].status_code == 400
    huge = b"payload=" + b"a" * 70_000
    assert client.post("/slack/actions", content=huge, headers=signed_body(huge)).status_code == 413


def test_a_click_queues_one_action_however_often_slack_sends_it(
    client: TestClient, rdb: redis.Redis, slack: SlackApi
) -> None:
    click = block_action(SIGNING, slack, action_id="workhooks.confirm", value=value("confirm"), user_id=ALICE,
                         channel_id=CHANNEL)  # fmt: skip
    answers = [send(client, click)[0], send(client, click, **{"X-Slack-Retry-Num": "1"})[0]]
    double = block_action(
        SIGNING, slack, action_id="workhooks.confirm", value=value("confirm"), user_id=ALICE, channel_id=CHANNEL
    )  # fmt: skip  (another click: another trigger, the same stay)
    answers.append(send(client, double)[0])
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    (record,) = actions.for_subject(rdb, "wordy-main", "job/7")
    assert (record.action, record.actor.who, record.status, record.stay) == ("confirm", ALICE, "queued", "evt_1")
    assert rdb.llen(keys.QUEUE_KEY) == 1  # one job, at the queue's front


def test_someone_not_allowed_is_told_so_and_nothing_is_queued(
    client: TestClient, rdb: redis.Redis, slack: SlackApi
) -> None:
    click = block_action(SIGNING, slack, action_id="workhooks.confirm", value=value("confirm"), user_id="U0777NOPE",
                         channel_id=OTHER)  # fmt: skip
    answer, (line,) = send(client, click)
    assert answer.status_code == 200 and line["outcome"] == "refused"
    (told,) = slack.ephemerals(OTHER)
    assert told["user"] == "U0777NOPE" and "not allowed" in told["text"]
    assert actions.for_subject(rdb, "wordy-main", "job/7") == []  # not an action: the trail is the real ones
    (record,) = actions.refusals(rdb, "wordy-main", "job/7")
    assert record.status == "refused" and rdb.llen(keys.QUEUE_KEY) == 0
    for _ in range(30):  # refusals cannot push the subject's real actions out of its trail
        send(client, click)
    assert len(actions.refusals(rdb, "wordy-main", "job/7")) == keys.REFUSALS_KEPT


def test_reject_opens_a_modal_and_its_submission_is_the_action_with_its_reason(
    client: TestClient, rdb: redis.Redis, slack: SlackApi
) -> None:
    click = block_action(SIGNING, slack, action_id="workhooks.reject", value=value("reject"), user_id=ALICE,
                         channel_id=CHANNEL)  # fmt: skip
    assert send(client, click)[0].status_code == 200
    assert send(client, click)[0].status_code == 200  # Slack's resend of the click: no second modal
    (opened,) = slack.views
    assert json.loads(opened["view"]["private_metadata"])["a"] == "reject"
    empty = view_submission(SIGNING, slack, user_id=ALICE, state_values={"wh_text": {"text": text_input("  ")}})
    answer, _ = send(client, empty)
    assert answer.json()["response_action"] == "errors"  # the modal stays open, saying what is missing
    reason = view_submission(SIGNING, slack, user_id=ALICE,
                             state_values={"wh_text": {"text": text_input(f"Not good; token {TOKEN}")}})  # fmt: skip
    assert send(client, reason)[0].status_code == 200
    (record,) = actions.for_subject(rdb, "wordy-main", "job/7")
    assert record.action == "reject" and record.text == "Not good; token [REDACTED]"


def test_an_email_link_shows_a_page_on_get_and_acts_once_on_post(client: TestClient, rdb: redis.Redis) -> None:
    token = links.make(LINKS, sink="mail", source="wordy-main", subject="job/7", action="confirm", stay="evt_1",
                       to="b@example.com", expires=time.time() + 3600)  # fmt: skip
    page = client.get(f"/act/{token}")
    assert page.status_code == 200 and "<form" in page.text and page.headers["referrer-policy"] == "no-referrer"
    assert actions.for_subject(rdb, "wordy-main", "job/7") == []  # a GET (a mail scanner) does nothing
    assert client.post(f"/act/{token}").status_code == 202  # queued: no worker in this test
    assert client.post(f"/act/{token}").status_code == 410
    (record,) = actions.for_subject(rdb, "wordy-main", "job/7")
    assert (record.actor.via, record.actor.who) == ("email", "b@example.com")
    expired = links.make(LINKS, sink="mail", source="wordy-main", subject="job/7", action="confirm", stay="evt_1",
                         to="b@example.com", expires=time.time() - 1)  # fmt: skip
    assert client.get(f"/act/{expired}").status_code == 410
    other_key = links.make("x" * 40, sink="mail", source="wordy-main", subject="job/7", action="confirm", stay="",
                           to="b@example.com", expires=time.time() + 60)  # fmt: skip
    assert client.post(f"/act/{other_key}").status_code == 404  # not signed by any sink's key
    nested = base64.urlsafe_b64encode(b"[" * 1400).rstrip(b"=").decode() + "." + "A" * 43
    assert client.get(f"/act/{nested}").status_code == 404  # never decoded: its MAC is checked first
    assert client.get("/act/not-a-token").status_code == 404
    pay = links.make(
        LINKS,
        sink="mail",
        source="wordy-main",
        subject="job/7",
        action="pay",
        stay="evt_1",
        to="b@example.com",
        expires=time.time() + 3600,
    )  # mailed while pay was named; it is not now
    refused = client.post(f"/act/{pay}")
    assert refused.status_code == 409 and "spends money" in refused.text
    assert client.get("/act/" + "A" * 5000 + ".x").status_code == 404


def test_a_member_of_an_allowed_channel_may_act_but_a_slack_connect_guest_in_it_may_not(
    client: TestClient, rdb: redis.Redis, slack: SlackApi
) -> None:
    guest = block_action(SIGNING, slack, action_id="workhooks.confirm", value=value("confirm"), user_id="U0555GUES",
                         channel_id=CHANNEL).payload  # fmt: skip
    guest["user"]["team_id"] = "T0GUESTORG"  # a member of the channel, from another workspace
    answer, (line,) = send(client, signed(SIGNING, guest))
    assert answer.status_code == 200 and line["outcome"] == "refused"
    member = block_action(SIGNING, slack, action_id="workhooks.confirm", value=value("confirm"), user_id="U0666MEMB",
                          channel_id=CHANNEL)  # fmt: skip
    answer, (line,) = send(client, member)
    assert answer.status_code == 200 and line["outcome"] == "queued"
    assert [record.status for record in actions.for_subject(rdb, "wordy-main", "job/7")] == ["queued"]
    assert [record.actor.who for record in actions.refusals(rdb, "wordy-main", "job/7")] == ["U0555GUES"]
