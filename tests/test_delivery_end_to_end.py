"""Delivery as a team relies on it: readable messages, retries, dead letters and replay, through real processes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis
from rq import Queue

from tests.servers import SECRET, TOKEN, CaptureServer, Service, SmtpServer, wait_until
from workhooks.store import keys

pytestmark = pytest.mark.slow

STATUS_ACR = b'{"status": ["aer", "acr"], "job_id": 123}'


def config(slack: CaptureServer, smtp: SmtpServer, chat: CaptureServer, erp: CaptureServer, retry: str = "[1]") -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  slack: {{type: slack, url: "{slack.url}", allow_private: true, allow_any_host: true, retry_intervals: {retry}}}
  mail:
    type: email
    url: {smtp.url}
    tls: none
    from: hooks@example.com
    to: [team@example.com]
    retry_intervals: {retry}
  chat: {{type: apprise, url: "json://127.0.0.1:{chat.port}/chat", retry_intervals: {retry}}}
  erp: {{type: webhook, url: "{erp.url}", secret: {SECRET}, allow_private: true, retry_intervals: {retry}}}
routes:
  - match: {{phase: awaiting_client}}
    to: [slack, mail]
    template: {{title: "Review needed: Wordy job {{{{ data.job_id }}}}"}}
  - match: {{source: wordy-main}}
    to: [slack, chat, erp]
"""


@pytest.fixture
def servers(smtp_server: SmtpServer) -> tuple[CaptureServer, SmtpServer, CaptureServer, CaptureServer]:
    return CaptureServer().start(), smtp_server, CaptureServer().start(), CaptureServer().start()


def test_each_sink_type_gets_a_readable_message(
    start: Callable[[str], Service], servers: tuple[CaptureServer, SmtpServer, CaptureServer, CaptureServer]
) -> None:
    slack, smtp, chat, erp = servers
    service = start(config(*servers))
    event_id = service.wordy(STATUS_ACR).json()["id"]

    (slack_post,) = slack.wait_for(1)
    assert slack_post.json()["text"].startswith("Review needed: Wordy job 123\nStatus changed from awaiting editor")
    assert slack_post.json()["blocks"][0]["text"]["text"] == "Review needed: Wordy job 123"
    ((_, mail),) = smtp.wait_for(1)
    assert mail["Subject"] == "Review needed: Wordy job 123"
    (chat_post,) = chat.wait_for(1)
    assert chat_post.json()["title"] == "Wordy job 123: awaiting your review"  # route 2's default
    (erp_post,) = erp.wait_for(1)
    assert erp_post.headers["webhook-id"] == event_id


def test_slack_429_waits_for_retry_after(
    start: Callable[[str], Service], servers: tuple[CaptureServer, SmtpServer, CaptureServer, CaptureServer]
) -> None:
    slack = servers[0]
    answers = iter([429])
    slack.status = lambda request: next(answers, 200)
    slack.headers = {"Retry-After": "3"}
    service = start(config(*servers, retry="[1, 1]"))
    event_id = service.wordy(STATUS_ACR).json()["id"]
    assert len(slack.wait_for(1, timeout=20)) == 1
    (first, _), (second, _) = slack.answered
    assert second - first >= 2.5  # Retry-After: 3, not the 1 s schedule
    shown = service.cli("events", "show", event_id).stdout
    assert "slack                #1 failed      " in shown and "429 answered 429" in shown
    assert "slack                #2 delivered" in shown


def test_permanent_refusal_is_dead_at_once_and_replay_delivers_once(
    start: Callable[[str], Service], servers: tuple[CaptureServer, SmtpServer, CaptureServer, CaptureServer]
) -> None:
    erp = servers[3]
    erp.status = 400
    service = start(config(*servers, retry="[1, 1, 1]"))
    event_id = service.wordy(STATUS_ACR).json()["id"]
    deadline = time.monotonic() + 15
    while "1 dead deliveries" not in (listed := service.cli("deliveries", "--failed").stdout):
        assert time.monotonic() < deadline, listed
        time.sleep(0.2)
    assert f"{event_id}-erp  dead       1 attempts" in listed and "400 answered 400" in listed
    assert len(erp.answered) == 1  # a 400 is not retried

    erp.status = 200
    replayed = service.cli("replay", "--failed", "--sink", "erp")
    assert "1 dead deliveries queued again" in replayed.stdout
    assert [r.headers["webhook-id"] for r in erp.wait_for(1)] == [event_id]
    time.sleep(1.5)
    assert len(erp.requests) == 1
    assert "0 dead deliveries" in service.cli("deliveries", "--failed").stdout


def test_sink_that_never_comes_back_ends_in_dead_letters_then_replay(
    start: Callable[[str], Service], servers: tuple[CaptureServer, SmtpServer, CaptureServer, CaptureServer]
) -> None:
    erp = servers[3]
    erp.status = 503
    service = start(config(*servers, retry="[1, 1]"))
    event_id = service.wordy(STATUS_ACR).json()["id"]
    deadline = time.monotonic() + 20
    while "dead" not in service.cli("deliveries", "--sink", "erp").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert len(erp.answered) == 3  # the first attempt and two retries
    assert len(servers[2].requests) == 1  # chat, on the same event, was not held up

    erp.status = 200
    assert service.cli("replay", f"{event_id}-erp").stdout.strip() == f"{event_id}-erp: queued"
    assert len(erp.wait_for(1)) == 1
    assert service.cli("replay", f"{event_id}-erp").stdout.strip() == f"{event_id}-erp: already delivered"


def test_processing_or_delivering_again_sends_nothing_twice(
    start: Callable[[str], Service],
    servers: tuple[CaptureServer, SmtpServer, CaptureServer, CaptureServer],
    rdb: redis.Redis,
) -> None:
    erp = servers[3]
    service = start(config(*servers))
    event_id = service.wordy(STATUS_ACR).json()["id"]
    assert len(erp.wait_for(1)) == 1
    # What RQ does after a crash: run the same jobs again.
    Queue(keys.QUEUE, connection=rdb).enqueue(keys.PROCESS_EVENT, event_id)
    Queue(keys.QUEUE, connection=rdb).enqueue(keys.DELIVER, event_id, "erp", 1)
    time.sleep(2)
    assert len(erp.requests) == 1
    attempts = [json.loads(a) for a in rdb.lrange(keys.attempts(event_id), 0, -1)]
    assert sorted(a["sink"] for a in attempts) == ["chat", "erp", "mail", "slack"]


def test_a_previous_release_processing_job_run_again_queues_only_the_deliveries_it_had_not_made(
    start: Callable[[str], Service],
    servers: tuple[CaptureServer, SmtpServer, CaptureServer, CaptureServer],
    rdb: redis.Redis,
) -> None:
    slack, _, chat, erp = servers
    service = start(config(*servers))
    event_id = service.wordy(STATUS_ACR).json()["id"]
    assert len(erp.wait_for(1)) == 1 and len(chat.wait_for(1)) == 1
    # As the previous release's worker, killed between its transaction and its first attempts, left it:
    # erp open, unattempted, in no lane (that release had none).
    rdb.hset(keys.delivery(f"{event_id}-erp"), mapping={"status": "pending", "attempts": 0})
    Queue(keys.QUEUE, connection=rdb).enqueue(keys.PROCESS_EVENT, event_id)
    assert len(erp.wait_for(2)) == 2
    time.sleep(1)
    assert len(chat.requests) == 1 and len(slack.requests) == 1


def test_no_rq_job_per_delivery_even_for_a_sink_with_a_long_timeout(
    start: Callable[[str], Service], sink_server: CaptureServer, rdb: redis.Redis
) -> None:
    service = start(f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  archive: {{type: webhook, url: "{sink_server.url}", allow_private: true, timeout: 60}}
  console: {{type: log}}
routes:
  - to: [archive, console]
""")
    accepted = [service.wordy(b'{"status": ["acp", "aer"], "job_id": %d}' % job).json()["id"] for job in range(20)]
    assert sorted(r.headers["webhook-id"] for r in sink_server.wait_for(20)) == sorted(accepted)
    wait_until(lambda: all(rdb.hget(keys.delivery(f"{i}-console"), "status") == b"delivered" for i in accepted),
               what="the log sink's 20")  # fmt: skip
    jobs = [key.decode().removeprefix(keys.rq_job("")) for key in rdb.scan_iter(keys.rq_job("*"))]
    assert jobs and all(job.startswith("drain-") for job in jobs)  # RQ ran processing only: 40 deliveries, 0 jobs
