"""Nothing waits unnoticed: reminders, deadlines, account and source health, dead letters — as events, through
the real receiver, scheduler, worker and Redis, with platform emulators on 127.0.0.1 and second-long rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from tests.emulators.wordy import Wordy
from tests.emulators.workreduce import WorkReduce
from tests.servers import TOKEN, CaptureServer, Service, wait_until
from workhooks.store import keys

pytestmark = pytest.mark.slow

WR_KEY = "wr-key-0123456789abcdef"


@pytest.fixture
def ops() -> Iterator[CaptureServer]:
    server = CaptureServer().start()
    yield server
    server.stop()


@pytest.fixture
def workreduce() -> Iterator[WorkReduce]:
    platform = WorkReduce(WR_KEY).start()
    yield platform
    platform.stop()


def config(sink: CaptureServer, ops: CaptureServer, sources: str, extra: str = "", ops_match: str = "") -> str:
    return f"""
sources:
{sources}
sinks:
  erp: {{type: webhook, url: "{sink.url}", allow_private: true, retry_intervals: [1]}}
  ops: {{type: webhook, url: "{ops.url}", allow_private: true, retry_intervals: [1]}}
routes:
  - match: {{type: "workhooks.*"}}
    to: [ops]
    continue: false
  - match: {{type: "wordy.account.*"}}
    to: [ops]
    continue: false
  - to: [erp]
{extra}
"""


def wr_source(platform: WorkReduce, key: str = WR_KEY) -> str:
    return f"  wr: {{platform: workreduce, api_key: {key}, base_url: '{platform.url}/v2', poll_interval: 1}}"


def got(server: CaptureServer, kind: str = "") -> list[dict[str, Any]]:
    return [request.json() for request in list(server.requests) if request.json()["type"].startswith(kind)]


def wait_count(server: CaptureServer, count: int, kind: str = "", timeout: float = 20) -> list[dict[str, Any]]:
    wait_until(lambda: len(got(server, kind)) >= count, timeout, f"{count} {kind or 'events'}")
    return got(server, kind)


def started(start: Callable[[str], Service], text: str, schedulers: int = 1) -> Service:
    service = start(text)
    for _ in range(schedulers):
        service.start_scheduler()
    return service


def test_a_reminder_fires_once_per_interval_stops_when_the_order_moves_and_a_second_stay_has_its_own(
    start: Callable[[str], Service], sink_server: CaptureServer, ops: CaptureServer, workreduce: WorkReduce,
    rdb: redis.Redis,
) -> None:  # fmt: skip
    rules = "reminders:\n  - {name: awaiting-us, match: {phase: awaiting_client}, after: 1s, every: 2s, max: 10}"
    started(start, config(sink_server, ops, wr_source(workreduce), rules))
    wait_until(lambda: rdb.exists(keys.poll_baseline("wr")), what="baseline")
    number = workreduce.add_order("Banner set", status="In Progress")
    wait_count(sink_server, 1)
    workreduce.move(number, "Delivered")
    wait_count(sink_server, 2)
    first = wait_count(ops, 2, "workhooks.reminder.due")
    assert first[0]["data"]["what"] == f"WorkReduce order {number}" and first[0]["phase"] == "awaiting_client"
    assert first[0]["data"]["reminder"] == 1 and first[1]["data"]["reminder"] == 2
    gap = datetime.fromisoformat(first[1]["time"]) - datetime.fromisoformat(first[0]["time"])
    assert timedelta(seconds=1) < gap < timedelta(seconds=4)  # one per interval, not one per evaluation

    workreduce.send_back(number, "In Progress")  # moved: the reminders stop
    wait_count(sink_server, 3)
    time.sleep(0.5)  # a reminder evaluated just before the move may still be on its way
    settled = len(got(ops))
    time.sleep(2.5)
    assert len(got(ops)) == settled

    workreduce.move(number, "Delivered")  # a second stay awaiting the client: reminders of its own, from 1
    wait_count(sink_server, 4)
    reminders = wait_count(ops, settled + 1, "workhooks.reminder.due")
    second = reminders[settled:]
    assert second[0]["data"]["reminder"] == 1 and second[0]["data"]["entry"] != first[0]["data"]["entry"]
    assert len({event["id"] for event in reminders}) == len(reminders)


def test_two_schedulers_and_a_restart_send_each_reminder_once(
    start: Callable[[str], Service], sink_server: CaptureServer, ops: CaptureServer, workreduce: WorkReduce,
    rdb: redis.Redis,
) -> None:  # fmt: skip
    number = workreduce.add_order("Waiting", status="Delivered")  # recorded by the first poll: its stay begins then
    rules = "reminders:\n  - {name: awaiting-us, match: {phase: awaiting_client}, after: 1s, every: 2s, max: 3}"
    service = started(start, config(sink_server, ops, wr_source(workreduce), rules), schedulers=2)
    wait_count(ops, 1, "workhooks.reminder.due")
    scheduler = service.workers[1]
    scheduler.kill()  # one scheduler dies mid-stay and a new one starts
    service.start_scheduler()

    def capped() -> bool:
        return any(event["data"]["reminder"] == 3 for event in got(ops, "workhooks.reminder.due"))

    wait_until(capped, 20, "the third reminder")
    time.sleep(2.5)  # the cap is reached: no more, from any scheduler
    reminders = got(ops, "workhooks.reminder.due")
    # Each once, in order (a reminder whose interval passed while no scheduler could evaluate is skipped,
    # not sent late: a stalled machine may skip the 2nd, never repeat one).
    assert [event["data"]["reminder"] for event in reminders] in ([1, 2, 3], [1, 3])
    assert len({event["id"] for event in reminders}) == len(reminders)
    assert all(event["subject"] == f"order/{number}" for event in reminders)


def test_a_deadline_approaching_then_missed(
    start: Callable[[str], Service], sink_server: CaptureServer, ops: CaptureServer, workreduce: WorkReduce,
    rdb: redis.Redis,
) -> None:  # fmt: skip
    started(start, config(sink_server, ops, wr_source(workreduce), "deadlines: {lead: 3s}"))
    wait_until(lambda: rdb.exists(keys.poll_baseline("wr")), what="baseline")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    number = workreduce.add_order("Due soon", status="In Progress", due_date=due.strftime("%Y-%m-%dT%H:%M:%SZ"))
    approaching, missed = wait_count(ops, 2, "workhooks.deadline", timeout=25)
    assert (approaching["type"], missed["type"]) == ("workhooks.deadline.approaching", "workhooks.deadline.missed")
    assert approaching["subject"] == missed["subject"] == f"order/{number}"
    assert datetime.fromisoformat(missed["time"]) >= due > datetime.fromisoformat(approaching["time"])
    assert missed["data"]["due"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(2)
    assert len(got(ops, "workhooks.deadline")) == 2


def test_a_wordy_balance_crossing_the_threshold_once_recovering_and_crossing_again(
    start: Callable[[str], Service], sink_server: CaptureServer, ops: CaptureServer, rdb: redis.Redis
) -> None:
    platform = Wordy().start()
    try:
        job = platform.add_job(status="aer")
        source = (
            f"  wordy-main: {{platform: wordy, token: {TOKEN}, api_key: {platform.api_key}, "
            f"base_url: '{platform.base_url}', confirm: true, balance_below: 50, account_interval: 1}}"
        )
        service = started(start, config(sink_server, ops, source))
        wait_until(lambda: rdb.hget(keys.account("wordy-main"), "balance") == b"100.00", what="a first check")
        platform.balance_cents = 4_000
        (low,) = wait_count(ops, 1, "wordy.account")
        assert low["type"] == "wordy.account.balance_low" and low["data"]["balance"] == "40.00"
        time.sleep(2.5)  # still low: said once
        assert len(got(ops, "wordy.account")) == 1
        platform.balance_cents = 6_000
        wait_count(ops, 2, "wordy.account")
        platform.balance_cents = 3_000
        events = wait_count(ops, 3, "wordy.account")
        assert [event["type"] for event in events] == [
            "wordy.account.balance_low", "wordy.account.balance_recovered", "wordy.account.balance_low",
        ]  # fmt: skip
        assert len({event["id"] for event in events}) == 3 and events[2]["data"]["crossing"] == 2

        # confirm reads GET /job/{id}/: its delivery_date is kept in the job's state and its deadline indexed
        assert service.wordy(f'{{"status": ["acp", "aer"], "job_id": {job}}}'.encode()).status_code == 202
        wait_count(sink_server, 1)
        kept = rdb.zscore(keys.DEADLINES, keys.subject_member("wordy-main", f"job/{job}"))
        assert kept == platform.jobs[job].created + 86_400
    finally:
        platform.stop()


def test_a_refused_key_is_announced_once_per_incident_and_its_recovery(
    start: Callable[[str], Service], sink_server: CaptureServer, ops: CaptureServer, workreduce: WorkReduce,
    rdb: redis.Redis,
) -> None:  # fmt: skip
    workreduce.api_key = "a-key-we-do-not-have"
    started(start, config(sink_server, ops, wr_source(workreduce)))
    (refused,) = wait_count(ops, 1, "workhooks.source")
    assert refused["type"] == "workhooks.source.unauthorized" and refused["subject"] == "source/wr"
    wait_until(lambda: int(rdb.hget(keys.poll_status("wr"), "failures") or 0) >= 2, 15, "a second refusal")
    assert len(got(ops, "workhooks.source")) == 1  # refused again: the same incident
    assert WR_KEY not in str(refused)
    workreduce.api_key = WR_KEY  # the key is fixed
    events = wait_count(ops, 2, "workhooks.source", timeout=20)
    assert [event["type"] for event in events] == ["workhooks.source.unauthorized", "workhooks.source.recovered"]
    assert events[1]["data"]["incident"] == 1


def test_a_dead_letter_is_announced_to_an_ops_route_without_recursion(
    start: Callable[[str], Service], ops: CaptureServer, rdb: redis.Redis
) -> None:
    broken, pager = CaptureServer(status=400).start(), CaptureServer(status=400).start()  # permanent: dead at once
    try:
        text = f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  broken: {{type: webhook, url: "{broken.url}", allow_private: true, retry_intervals: []}}
  pager: {{type: webhook, url: "{pager.url}", allow_private: true, retry_intervals: []}}
  ops: {{type: webhook, url: "{ops.url}", allow_private: true, retry_intervals: [1]}}
routes:
  - to: [broken]                          # everything: but never a dead letter's announcement of its own
  - match: {{type: workhooks.delivery.dead}}
    to: [ops, pager]                      # the pager refuses it too: that dead letter is not announced
"""
        service = start(text)
        assert service.wordy(b'{"status": ["acp", "aer"], "job_id": 501}').status_code == 202
        (dead,) = wait_count(ops, 1, "workhooks.delivery.dead")
        assert dead["data"]["sink"] == "broken" and dead["data"]["event_type"] == "wordy.job.status_changed"
        assert dead["subject"] == "job/501" and "400" in dead["data"]["error"]
        wait_until(lambda: len(pager.arrived) == 1, what="the announcement sent to the pager")
        wait_until(lambda: rdb.zcard(keys.DEAD_INDEX) == 2, what="the pager's dead letter")
        wait_until(lambda: "dead_letter_not_announced" in service.logs(), what="the loop refused")
        time.sleep(2)  # nothing more: no announcement of the announcement, nothing to the sink that refused
        assert len(got(ops)) == 1 and len(pager.arrived) == 1 and len(broken.arrived) == 1
        assert rdb.zcard(keys.DEAD_INDEX) == 2
    finally:
        broken.stop()
        pager.stop()
