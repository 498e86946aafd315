"""Threads and actions in-process against a real Redis, the Slack Web API emulator and the Wordy emulator."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from slack_sdk.models.blocks import Block

from tests.emulators.slack import SlackApi
from tests.emulators.wordy import Wordy
from tests.servers import TOKEN
from workers import actions as acting
from workers import settings, work
from workers.exceptions import DeliveryError
from workers.sinks import context
from workers.sinks.slack_app import SlackAppSink
from workhooks.config.loading import load_config
from workhooks.config.schema import Config
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy_callback
from workhooks.store import actions, keys

BOT = "xoxb-1111111111-2222222222222-workerstests"
KEY = "wordy-api-key-0123456789abcdef"
CHANNEL = "C0456EFGH"


@pytest.fixture
def slack() -> Iterator[SlackApi]:
    api = SlackApi(token=BOT, channels={CHANNEL: "work"}).start()
    yield api
    api.stop()


@pytest.fixture
def wordy() -> Iterator[Wordy]:
    emulator = Wordy(api_key=KEY).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: SlackApi, wordy: Wordy, redis_url: str
) -> Iterator[Config]:
    path = tmp_path / "workhooks.yaml"
    path.write_text(f"""
sources:
  wordy-main:
    platform: wordy
    token: {TOKEN}
    api_key: {KEY}
    base_url: {wordy.base_url}
    actions: {{allow: {{slack_users: [U0123ABCD]}}}}
sinks:
  team: {{type: slack_app, bot_token: {BOT}, signing_secret: signing-secret-0123456789, channel: {CHANNEL},
          base_url: "{slack.base_url}", allow_private: true}}
routes: [{{to: [team]}}]
""")  # fmt: skip
    monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
    monkeypatch.setenv("REDIS_URL", redis_url)
    for cached in (settings.config, settings.sink, context.redis_connection):
        cached.cache_clear()
    yield load_config(str(path))
    for cached in (settings.config, settings.sink, context.redis_connection):
        cached.cache_clear()


def event(job: int, old: str, new: str, number: int) -> Event:
    body = json.dumps({"status": [old, new], "job_id": job}).encode()
    parsed = Event.from_callback("wordy-main", wordy_callback.parse(body, "application/json"))
    return dataclasses.replace(parsed, id=f"evt_{job}_{number}")


def stored(rdb: redis.Redis, job: int, status: str, entry: str) -> None:
    state = {"subject": f"job/{job}", "source": "wordy-main", "events": [entry], "status": status,
             "status_label": status, "stay": {"phase": "awaiting_client", "status": status, "since": time.time(),
                                              "entry": entry}}  # fmt: skip
    rdb.set(keys.state("wordy-main", f"job/{job}"), json.dumps(state))


def sink() -> SlackAppSink:
    built = settings.sink("team")
    assert isinstance(built, SlackAppSink)
    return built


def test_a_subjects_events_are_one_thread_whose_parent_follows_and_a_deleted_parent_starts_anew(
    config: Config, rdb: redis.Redis, slack: SlackApi
) -> None:
    stored(rdb, 5, "aer", "evt_5_1")
    sink().send(event(5, "acp", "aer", 1))
    stored(rdb, 5, "acr", "evt_5_2")
    sink().send(event(5, "aer", "acr", 2))
    (parent,) = slack.messages(CHANNEL)
    (_, reply) = slack.thread(CHANNEL, parent["ts"])  # the parent, then its replies
    assert "awaiting your review" in reply["text"]
    blocks = parent["blocks"]
    assert "acr" in json.dumps(blocks) and [b["action_id"] for b in blocks[-1]["elements"]] == [
        "workhooks.confirm", "workhooks.reject", "workhooks.reply"]  # fmt: skip
    for block in blocks:
        found = Block.parse(block)
        assert found is not None
        found.validate_json()  # Slack's own limits, as slack_sdk's models check them
    assert next(b for b in blocks[-1]["elements"] if b["action_id"] == "workhooks.confirm")["confirm"]

    slack.delete(CHANNEL, parent["ts"])
    sink().send(event(5, "acr", "aer", 3))
    fresh = [m for m in slack.messages(CHANNEL) if m["ts"] != parent["ts"]]
    assert len(fresh) == 1 and len(slack.thread(CHANNEL, fresh[0]["ts"])) == 1  # this event is the new parent
    found = actions.thread(rdb, "team", "wordy-main", "job/5")
    assert found is not None and found.ts == fresh[0]["ts"]


def test_slack_refusals_are_retried_or_dead_as_they_deserve(config: Config, rdb: redis.Redis, slack: SlackApi) -> None:
    stored(rdb, 6, "aer", "evt_6_1")
    slack.rate_limit_every, slack.retry_after = 1, 7
    with pytest.raises(DeliveryError) as limited:
        sink().send(event(6, "acp", "aer", 1))
    assert (limited.value.status_code, limited.value.retry_after, limited.value.permanent) == (429, 7.0, False)
    slack.rate_limit_every = None
    slack.token = "xoxb-another-workspace-0000000000"  # our token revoked
    with pytest.raises(DeliveryError) as refused:
        sink().send(event(6, "acp", "aer", 1))
    assert refused.value.permanent and "invalid_auth" in str(refused.value)
    assert BOT not in str(refused.value)


def ask(rdb: redis.Redis, config: Config, job: int, name: str, text: str | None = None, who: str = "U0123ABCD",
        stay: str | None = None) -> tuple[actions.ActionRecord, bool]:  # fmt: skip
    return work.ask(rdb, config, "wordy-main", f"job/{job}", name, actions.Actor("slack", who), text, stay)


def test_twenty_people_confirming_at_once_is_one_action_and_one_job(config: Config, rdb: redis.Redis) -> None:
    stored(rdb, 7, "acr", "evt_7_1")
    results: list[tuple[actions.ActionRecord, bool]] = []
    threads = [threading.Thread(target=lambda n=n: results.append(ask(rdb, config, 7, "confirm", who=f"U{n:08d}")))
               for n in range(20)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(new for _, new in results) == 1 and len({record.id for record, _ in results}) == 1
    assert len(actions.for_subject(rdb, "wordy-main", "job/7")) == 1 and rdb.llen(keys.QUEUE_KEY) == 1


def test_an_action_the_job_moved_on_from_is_not_sent_and_may_be_asked_again(
    config: Config, rdb: redis.Redis, wordy: Wordy
) -> None:
    job = wordy.add_job(status="acr")
    stored(rdb, job, "acr", "evt_old")
    record, _ = ask(rdb, config, job, "confirm", stay="evt_old")
    stored(rdb, job, "acr", "evt_new")  # rejected and returned meanwhile: another round
    assert acting.run(rdb, config, record.id) == "failed"
    final = actions.load(rdb, record.id)
    assert final is not None and "moved on" in final.answer and wordy.jobs[job].status == "acr"
    again, new = ask(rdb, config, job, "confirm")
    assert new and acting.run(rdb, config, again.id) == "done" and wordy.jobs[job].status == "c"
    assert acting.run(rdb, config, again.id) == "done"  # the job run again: nothing sent twice
    assert sum(1 for r in wordy.requests if r.path.endswith("/confirm/")) == 1


def test_a_refused_action_can_be_asked_again_but_one_whose_outcome_is_unknown_is_not_resent(
    config: Config, rdb: redis.Redis, wordy: Wordy
) -> None:
    job = wordy.add_job(status="aer")
    stored(rdb, job, "acr", "evt_a")  # we think it is back with us; Wordy says the editor has it
    record, _ = ask(rdb, config, job, "confirm")
    assert acting.run(rdb, config, record.id) == "failed"  # Wordy's 400: nothing applied
    wordy.jobs[job].status = "acr"
    wordy.fail_next(1, 502)  # a proxy's Bad Gateway: Wordy may have confirmed it
    retry, new = ask(rdb, config, job, "confirm")
    assert new and retry.id != record.id  # a definite refusal gives the decision back
    assert acting.run(rdb, config, retry.id) == "unknown"
    lost = actions.load(rdb, retry.id)
    assert lost is not None and "whether it was applied is not known" in lost.answer
    again, new = ask(rdb, config, job, "reject", text="no")  # confirm or reject: one decision per stay
    assert not new and again.id == retry.id
    assert sum(1 for r in wordy.requests if r.path.endswith("/confirm/")) == 2  # the refused one, the 502


def test_a_worker_that_died_while_sending_leaves_the_outcome_unknown_and_sends_nothing_again(
    config: Config, rdb: redis.Redis, wordy: Wordy
) -> None:
    job = wordy.add_job(status="acr")
    stored(rdb, job, "acr", "evt_s")
    record, _ = ask(rdb, config, job, "confirm")
    rdb.hset(keys.action(record.id), "status", "sending")  # the job's first run died after this
    assert acting.run(rdb, config, record.id) == "unknown"
    final = actions.load(rdb, record.id)
    assert final is not None and "check the platform" in final.answer
    assert not any(r.path.endswith("/confirm/") for r in wordy.requests)


def test_after_an_action_the_parent_says_who_did_what_and_offers_only_what_applies(
    config: Config, rdb: redis.Redis, slack: SlackApi, wordy: Wordy
) -> None:
    job = wordy.add_job(status="acr")
    stored(rdb, job, "acr", "evt_p")
    sink().send(event(job, "aer", "acr", 1))
    (parent,) = slack.messages(CHANNEL)
    record, _ = ask(rdb, config, job, "reject", text="Please redo the intro")
    assert acting.run(rdb, config, record.id) == "done"
    shown: Callable[[], dict[str, Any]] = lambda: slack.parent(CHANNEL, parent["ts"]) or {}  # noqa: E731
    assert "Rejected by <@U0123ABCD>" in json.dumps(shown()["blocks"]) and "Wordy answered 200" in json.dumps(shown())
    assert "workhooks.reject" not in json.dumps(shown()["blocks"])  # this stay's reject is done
    stored(rdb, job, "acr", "evt_r")  # the editor returned it; Wordy, though, still shows aer (reject applied)
    failed, _ = ask(rdb, config, job, "confirm")
    assert acting.run(rdb, config, failed.id) == "failed"
    (*_, told) = slack.thread(CHANNEL, parent["ts"])
    assert "confirm by <@U0123ABCD>" in told["text"] and "cannot confirm a job in status aer" in told["text"]
