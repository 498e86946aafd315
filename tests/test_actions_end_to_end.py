"""Acting on work where the team is: a Slack thread per job with buttons, the console, email links and the CLI,
through real processes, against the Wordy and Slack Web API emulators (written from their documents)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.emulators.slack import SlackApi, block_action, signed, text_input, view_submission
from tests.emulators.wordy import Wordy
from tests.servers import TOKEN, Service, SmtpServer, free_port, wait_until

pytestmark = pytest.mark.slow

API_KEY = "wordy-api-key-0123456789abcdef"
BOT = "xoxb-1111111111-2222222222222-actionsactionsactions"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
ADMIN = "admin-token-0123456789abcdef"
LINKS = "link-secret-0123456789abcdef0123456789abcdef"
CHANNEL = "C0456EFGH"
ALICE = "U0123ABCD"  # listed by id
BOB = "U0999BOBB"  # a member of the listed channel
STRANGER = "U0777NOPE"
TEAM = "T0000000001"


def config(wordy: Wordy, slack: SlackApi, smtp: SmtpServer, public: str) -> str:
    return f"""
sources:
  wordy-main:
    platform: wordy
    token: {TOKEN}
    api_key: {API_KEY}
    base_url: {wordy.base_url}
    actions:
      allow: {{slack_users: [{ALICE}], slack_channels: [{CHANNEL}]}}
sinks:
  team:
    type: slack_app
    bot_token: {BOT}
    signing_secret: {SIGNING}
    channel: {CHANNEL}
    base_url: {slack.base_url}
    allow_private: true
    rate_limit: {{per_second: 50, burst: 10}}
  mail:
    type: email
    url: {smtp.url}
    tls: none
    from: hooks@example.com
    to: [team@example.com]
    action_links: {{base_url: "{public}", secret: {LINKS}}}
routes:
  - to: [team]
  - match: {{phase: awaiting_client}}
    to: [mail]
admin: {{token: {ADMIN}}}
"""


@pytest.fixture
def emulators() -> Iterator[tuple[Wordy, SlackApi]]:
    wordy = Wordy(api_key=API_KEY, auto_deliver=True).start()
    # Slack's chat.postMessage limit (about 1 a second per channel; past it, 429 with Retry-After), while the
    # sink is told it may send 50 a second: the 429s come now and then, as from a busy workspace.
    slack = SlackApi(token=BOT, channels={CHANNEL: "work", "C0999OTHR": "elsewhere"},
                     per_second={"chat.postMessage": 1}).start()  # fmt: skip
    yield wordy, slack
    wordy.stop()
    slack.stop()


@pytest.fixture
def service(start: Callable[..., Service], emulators: tuple[Wordy, SlackApi], smtp_server: SmtpServer) -> Service:
    wordy, slack = emulators
    port = free_port()  # the receiver's address is in the config (email links): chosen first
    return start(config(wordy, slack, smtp_server, f"http://127.0.0.1:{port}"), port=port)


def hook(service: Service) -> str:
    return f"{service.base}/hooks/wordy-main/{TOKEN}"


def parents(slack: SlackApi) -> list[dict[str, Any]]:
    return [message for message in slack.messages(CHANNEL) if message.get("bot_id")]


def button(message: dict[str, Any], action: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == f"workhooks.{action}":
                found: dict[str, Any] = element
                return found
    return None


def click(service: Service, slack: SlackApi, parent: dict[str, Any], action: str, user: str = ALICE,
          channel: str = CHANNEL, **options: Any) -> httpx.Response:  # fmt: skip
    pressed = button(parent, action)
    assert pressed is not None, f"no {action} button on {parent.get('blocks')}"
    request = block_action(SIGNING, slack, user_id=user, team_id=TEAM, channel_id=channel, message_ts=parent["ts"],
                           action_id=pressed["action_id"], value=pressed["value"], **options)  # fmt: skip
    return service.post("/slack/actions", request.body, request.headers["Content-Type"], **_headers(request.headers))


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != "Content-Type"}


def calls(wordy: Wordy, job: int, action: str) -> int:
    return sum(1 for r in wordy.requests if r.method == "POST" and r.path.endswith(f"/job/{job}/{action}/"))


def job_in_acr(wordy: Wordy, service: Service) -> int:
    job = wordy.add_job(status="acp", callback_url=hook(service))
    wordy.set_status(job, "aer")
    wordy.deliver(job, {"text": "edited"})
    return job


def test_a_jobs_events_share_one_thread_and_a_reject_sent_twice_by_slack_reaches_wordy_once(
    service: Service, emulators: tuple[Wordy, SlackApi]
) -> None:
    wordy, slack = emulators
    job = job_in_acr(wordy, service)
    wait_until(lambda: parents(slack) and len(slack.thread(CHANNEL, parents(slack)[0]["ts"])) >= 1, 20,
               "the job's parent and its first reply")  # fmt: skip
    (parent,) = parents(slack)
    wait_until(lambda: button(slack.parent(CHANNEL, parent["ts"]) or {}, "reject"), 10, "the parent's buttons")
    parent = slack.parent(CHANNEL, parent["ts"]) or {}
    assert "awaiting customer response" in json.dumps(parent["blocks"])
    assert button(parent, "pay") is None  # pay spends money: not configured, never offered

    assert click(service, slack, parent, "reject").status_code == 200
    (opened,) = slack.views  # the modal, opened by the receiver within the trigger's life
    assert opened["view"]["callback_id"] == "workhooks_action"
    reason = {"wh_text": {"text": text_input("The headline is still wrong")}}
    first = view_submission(SIGNING, slack, user_id=ALICE, team_id=TEAM, state_values=reason)
    again = view_submission(SIGNING, slack, user_id=ALICE, team_id=TEAM, state_values=reason, retry=(1, "http_timeout"))
    for submitted in (first, again):
        answer = service.post("/slack/actions", submitted.body, submitted.headers["Content-Type"],
                              **_headers(submitted.headers))  # fmt: skip
        assert answer.status_code == 200
    wait_until(lambda: wordy.jobs[job].status == "aer", 20, "Wordy to have the rejection")
    time.sleep(1)  # a second reject, if one were sent, would have arrived by now
    assert calls(wordy, job, "reject") == 1
    assert [m["message"] for m in wordy.jobs[job].conversation].count("The headline is still wrong") == 1

    # The editor sends it back: the job's next round lands in the same thread, and the parent offers again
    wordy.deliver(job, {"text": "edited again"})
    wait_until(lambda: "awaiting customer response" in json.dumps((slack.parent(CHANNEL, parent["ts"]) or {})
                                                                   .get("blocks")) and button(
        slack.parent(CHANNEL, parent["ts"]) or {}, "reject"), 20, "the parent to offer the next round")  # fmt: skip
    assert len(parents(slack)) == 1
    assert any(call.status == 429 for call in slack.calls("chat.postMessage"))  # and each waited, none lost
    # the parent; aer->acr (the first round), the reason, acr->aer, aer->acr again: each once, in order
    wait_until(lambda: len(slack.thread(CHANNEL, parent["ts"])) >= 5, 30, "every event in the thread")
    said = [reply["text"].split("\n")[0] for reply in slack.thread(CHANNEL, parent["ts"])[1:]]
    assert said == ["Wordy job 101: awaiting your review", "Wordy job 101: new message from John D",
                    "Wordy job 101: with the editor", "Wordy job 101: awaiting your review"], said  # fmt: skip
    shown = service.cli("work", "show", "wordy-main", f"job/{job}").stdout
    assert re.search(r"reject by <@U0123ABCD>: Wordy answered 200", shown), shown
    assert API_KEY not in service.logs() and BOT not in service.logs() and SIGNING not in service.logs()


def test_people_not_allowed_are_refused_and_nothing_reaches_wordy(
    service: Service, emulators: tuple[Wordy, SlackApi]
) -> None:
    wordy, slack = emulators
    job = job_in_acr(wordy, service)
    wait_until(lambda: parents(slack) and button(parents(slack)[0], "confirm"), 20, "the parent's buttons")
    (parent,) = parents(slack)
    assert click(service, slack, parent, "confirm", user=STRANGER, channel="C0999OTHR").status_code == 200
    # a Slack Connect guest in the listed channel: a member, but of another workspace
    guest = block_action(SIGNING, slack, user_id="U0555GUES", team_id=TEAM, channel_id=CHANNEL,
                         message_ts=parent["ts"], action_id="workhooks.confirm",
                         value=(button(parent, "confirm") or {})["value"]).payload  # fmt: skip
    guest["user"]["team_id"] = "T0GUESTORG"
    request = signed(SIGNING, guest)
    assert service.post("/slack/actions", request.body, request.headers["Content-Type"],
                        **_headers(request.headers)).status_code == 200  # fmt: skip
    wait_until(lambda: len(slack.ephemerals("C0999OTHR")) == 1 and len(slack.ephemerals(CHANNEL)) == 1, 10,
               "both told they may not")  # fmt: skip
    assert "not allowed" in slack.ephemerals(CHANNEL)[0]["text"]
    # forged (another secret) and replayed (a timestamp 10 minutes old): 401, before anything is read
    forged = block_action("another-apps-signing-secret", slack, user_id=ALICE, team_id=TEAM, channel_id=CHANNEL,
                          message_ts=parent["ts"], action_id="workhooks.confirm",
                          value=(button(parent, "confirm") or {})["value"])  # fmt: skip
    old = block_action(SIGNING, slack, user_id=ALICE, team_id=TEAM, channel_id=CHANNEL, message_ts=parent["ts"],
                       action_id="workhooks.confirm", value=(button(parent, "confirm") or {})["value"],
                       timestamp=int(time.time()) - 600)  # fmt: skip
    for refused in (forged, old):
        answer = service.post("/slack/actions", refused.body, refused.headers["Content-Type"],
                              **_headers(refused.headers))  # fmt: skip
        assert answer.status_code == 401
    unknown = block_action(SIGNING, slack, user_id=ALICE, team_id=TEAM, action_id="approve", value="yes")
    assert service.post("/slack/actions", unknown.body, unknown.headers["Content-Type"],
                        **_headers(unknown.headers)).status_code == 400  # fmt: skip
    time.sleep(1)
    assert calls(wordy, job, "confirm") == 0 and wordy.jobs[job].status == "acr"
    trail = service.cli("work", "show", "wordy-main", f"job/{job}").stdout
    assert trail.count("confirm by") == 2 and "refused" in trail
    assert "not on the source's actions.allow" in service.logs()


def test_a_double_click_on_confirm_confirms_once(service: Service, emulators: tuple[Wordy, SlackApi]) -> None:
    wordy, slack = emulators
    job = job_in_acr(wordy, service)
    wait_until(lambda: parents(slack) and button(parents(slack)[0], "confirm"), 20, "the parent's buttons")
    (parent,) = parents(slack)
    assert click(service, slack, parent, "confirm", user=BOB).status_code == 200  # BOB: a member of the channel
    assert click(service, slack, parent, "confirm", user=ALICE).status_code == 200
    wait_until(lambda: wordy.jobs[job].status == "c", 20, "Wordy to have the confirmation")
    wait_until(lambda: "Confirmed by <@U0999BOBB>" in json.dumps(slack.parent(CHANNEL, parent["ts"])), 20,
               "the parent to say who confirmed")  # fmt: skip
    time.sleep(1)
    assert calls(wordy, job, "confirm") == 1
    assert button(slack.parent(CHANNEL, parent["ts"]) or {}, "confirm") is None  # buttons gone
    assert "Already decided: confirm by <@U0999BOBB>" in slack.ephemerals(CHANNEL)[-1]["text"]


def test_the_console_an_email_link_and_the_cli_act_the_same_way_and_are_audited(
    service: Service, emulators: tuple[Wordy, SlackApi], smtp_server: SmtpServer
) -> None:
    wordy, _ = emulators
    by_console, by_link, by_cli = (job_in_acr(wordy, service) for _ in range(3))
    admin = {"authorization": f"Bearer {ADMIN}"}
    wait_until(lambda: all(service.http.get(f"/admin/api/work/wordy-main/job/{job}", headers=admin).status_code == 200
                           and service.http.get(f"/admin/api/work/wordy-main/job/{job}", headers=admin)
                           .json()["status"] == "awaiting customer response" for job in (by_console, by_link, by_cli)),
               20, "the three jobs awaiting us")  # fmt: skip
    waiting = service.http.get("/admin/api/work", params={"phase": "awaiting_client"}, headers=admin).json()["items"]
    assert {row["subject"] for row in waiting} >= {f"job/{by_console}", f"job/{by_link}", f"job/{by_cli}"}

    confirm = {"source": "wordy-main", "subject": f"job/{by_console}", "action": "confirm"}
    answer = service.http.post("/admin/api/actions", headers=admin, json=confirm)
    assert answer.status_code == 200 and answer.json()["status"] == "done", answer.text
    assert wordy.jobs[by_console].status == "c"
    refused = service.http.post("/admin/api/actions", headers=admin, json=confirm)
    assert refused.status_code in (200, 409)  # the same stay's confirm (200, the earlier one) or no longer applies
    assert calls(wordy, by_console, "confirm") == 1
    assert service.http.post("/admin/api/actions", json={}).status_code == 401  # no token: no action

    def link() -> str | None:
        for _, mail in smtp_server.messages:
            text = mail.get_body(("plain",)).get_content()
            if f"job/{by_link}" in text:
                found = re.search(r"Confirm complete: (\S+)", text)
                return found.group(1) if found else None
        return None

    wait_until(link, 20, "the email with its action links")
    url = link() or ""
    page = httpx.get(url)  # a mail scanner fetching it: nothing happens
    assert page.status_code == 200 and "<form" in page.text and page.headers["referrer-policy"] == "no-referrer"
    assert wordy.jobs[by_link].status == "acr"
    done = httpx.post(url)
    assert done.status_code == 200 and "Wordy answered 200" in done.text, done.text
    assert httpx.post(url).status_code == 410  # single use
    assert httpx.get(url[:-3] + "AAA").status_code in (404, 410)  # altered
    assert wordy.jobs[by_link].status == "c" and calls(wordy, by_link, "confirm") == 1

    cli = service.cli("act", "wordy-main", f"job/{by_cli}", "reply", "--message", "Thanks, looking now")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "Thanks, looking now" in [m["message"] for m in wordy.jobs[by_cli].conversation]
    no = service.cli("act", "wordy-main", f"job/{by_cli}", "pay")
    assert no.returncode == 1 and "spends money" in no.stderr

    audit = service.http.get("/admin/api/actions", headers=admin).json()["items"]
    assert {(item["action"], item["actor"]["via"], item["status"]) for item in audit} >= {
        ("confirm", "console", "done"), ("confirm", "email", "done"), ("reply", "cli", "done")}  # fmt: skip
    metrics = service.http.get("/metrics").text
    assert 'workhooks_actions_total{action="confirm",outcome="done",source="wordy-main"} 2.0' in metrics
