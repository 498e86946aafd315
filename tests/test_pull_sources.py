"""Pull sources as whole stories: platform emulators on 127.0.0.1, real scheduler and worker processes."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.emulators.workreduce import LIFECYCLE, WorkReduce
from tests.emulators.worksection import Worksection
from tests.emulators.worktaps import WorkTaps
from tests.servers import CaptureServer, Service, wait_until
from workhooks.store import keys

pytestmark = pytest.mark.slow

WR_KEY, WS_KEY, WT_TOKEN = "wr-key-meowmeowmeow", "ws-admin-key", "wt-token-abc"


def config(sink: CaptureServer, slack: CaptureServer, sources: str) -> str:
    return f"""
sources:
{sources}
sinks:
  erp: {{type: webhook, url: "{sink.url}", allow_private: true, retry_intervals: [1]}}
  team: {{type: slack, url: "{slack.url}", allow_private: true, allow_any_host: true, retry_intervals: [1]}}
routes:
  - to: [erp]
  - match: {{phase: awaiting_client}}
    to: [team]
"""


@pytest.fixture
def slack() -> Iterator[CaptureServer]:
    server = CaptureServer().start()
    yield server
    server.stop()


def events(sink: CaptureServer) -> list[dict[str, object]]:
    return [request.json() for request in sink.requests]


def wait_events(sink: CaptureServer, count: int, timeout: float = 20) -> list[dict[str, object]]:
    sink.wait_for(count, timeout)
    return events(sink)


def started(start: Callable[[str], Service], text: str) -> Service:
    service = start(text)
    service.start_scheduler()
    return service


def test_an_order_walking_the_workreduce_lifecycle(
    start: Callable[[str], Service], sink_server: CaptureServer, slack: CaptureServer, rdb: redis.Redis
) -> None:
    platform = WorkReduce(WR_KEY).start()  # lists open orders only: an approved order leaves the list
    try:
        platform.add_order("Existing order", status="In Progress")
        source = f"  wr: {{platform: workreduce, api_key: {WR_KEY}, base_url: '{platform.url}/v2', poll_interval: 1}}"
        started(start, config(sink_server, slack, source))
        wait_until(lambda: rdb.exists(keys.poll_baseline("wr")), what="baseline")
        number = platform.add_order("QA Screenshot of Ad Creative - BigCo")  # activated: submitted by the client
        assert [e["type"] for e in wait_events(sink_server, 1)] == ["workreduce.order.created"]
        walk = LIFECYCLE[LIFECYCLE.index("Activated") :]
        for count, status in enumerate(walk[1:], start=2):
            platform.move(number, status)
            got = wait_events(sink_server, count)
            assert len(got) == count, f"no event for {status}"
        steps = [(e["data"]["previous_status"], e["data"]["status"]) for e in events(sink_server)[1:]]  # type: ignore[index]
        assert steps == list(itertools.pairwise(walk))
        assert events(sink_server)[-1]["phase"] == "completed"  # Approved, learned although it left the list
        assert all(e["subject"] == f"order/{number}" for e in events(sink_server))  # the existing order: baseline only
        (message,) = slack.wait_for(1)
        assert message.json()["text"].startswith(f"WorkReduce order {number} is Delivered, please approve\n")
        time.sleep(2.5)  # more polls see nothing new
        assert len(sink_server.requests) == len(walk)
    finally:
        platform.stop()


def test_an_order_sent_back_through_qa_is_announced_each_time_across_restarts(
    start: Callable[[str], Service], sink_server: CaptureServer, slack: CaptureServer, rdb: redis.Redis
) -> None:
    platform = WorkReduce(WR_KEY).start()
    try:
        number = platform.add_order("Banner set", status="In Progress")
        source = f"  wr: {{platform: workreduce, api_key: {WR_KEY}, base_url: '{platform.url}/v2', poll_interval: 1}}"
        service = started(start, config(sink_server, slack, source))
        wait_until(lambda: rdb.exists(keys.poll_baseline("wr")), what="baseline")
        platform.move(number, "In QA")
        wait_events(sink_server, 1)
        platform.send_back(number, "In Progress")  # QA sends it back
        wait_events(sink_server, 2)
        worker, scheduler = service.workers  # both restarted while the order is in QA a second time
        scheduler.kill()
        worker.kill()
        platform.move(number, "In QA")
        time.sleep(1.5)
        service.start_scheduler()
        service.start_worker()
        platform_steps = [("In Progress", "In QA"), ("In QA", "In Progress"), ("In Progress", "In QA")]
        got = wait_events(sink_server, 3, timeout=40)
        assert [(e["data"]["previous_status"], e["data"]["status"]) for e in got] == platform_steps  # type: ignore[index]
        assert len({e["id"] for e in got}) == 3  # the second In QA is not taken for the first's resend
        time.sleep(2.5)
        assert len(sink_server.requests) == 3
    finally:
        platform.stop()


def test_an_order_the_client_cancels_is_announced_once_though_it_leaves_the_list(
    start: Callable[[str], Service], sink_server: CaptureServer, slack: CaptureServer, rdb: redis.Redis
) -> None:
    platform = WorkReduce(WR_KEY, closed_lookup_status=404, status_filter_finds_closed=True).start()
    try:
        number = platform.add_order("To be canceled", status="In Progress")
        source = f"  wr: {{platform: workreduce, api_key: {WR_KEY}, base_url: '{platform.url}/v2', poll_interval: 1}}"
        started(start, config(sink_server, slack, source))
        wait_until(lambda: rdb.exists(keys.poll_baseline("wr")), what="baseline")
        platform.cancel(number, by_client=True)
        (event,) = wait_events(sink_server, 1)
        assert (event["type"], event["data"]["status"], event["phase"]) == (  # type: ignore[index]
            "workreduce.order.status_changed", "Client Canceled", "canceled",
        )  # fmt: skip
        time.sleep(2.5)
        assert len(sink_server.requests) == 1
    finally:
        platform.stop()


def test_paging_across_250_orders_misses_none_and_survives_a_429_storm(
    start: Callable[[str], Service], sink_server: CaptureServer, slack: CaptureServer
) -> None:
    platform = WorkReduce(WR_KEY).start()
    try:
        numbers = [platform.add_order(f"order {n}") for n in range(250)]
        platform.fail_next(6, 429, {"error": "Too Many Requests"}, **{"Retry-After": "1"})
        source = (
            f"  wr: {{platform: workreduce, api_key: {WR_KEY}, base_url: '{platform.url}/v2', poll_interval: 1,"
            " announce_existing: true}"
        )
        started(start, config(sink_server, slack, source))
        got = wait_events(sink_server, 250, timeout=60)
        assert sorted(e["data"]["order_number"] for e in got) == sorted(numbers)  # type: ignore[index]
        assert len(got) == 250
        pages = [request.query for request in platform.requests if request.path == "/v2/orders"]
        assert any(q.get("starting_after") for q in pages) and all(q["limit"] == ["100"] for q in pages)
    finally:
        platform.stop()


def test_a_bad_key_is_reported_and_backed_off(
    start: Callable[[str], Service], sink_server: CaptureServer, slack: CaptureServer, rdb: redis.Redis
) -> None:
    platform = WorkReduce("the-real-key").start()
    try:
        source = f"  wr: {{platform: workreduce, api_key: wrong-key, base_url: '{platform.url}/v2', poll_interval: 1}}"
        service = started(start, config(sink_server, slack, source))
        wait_until(lambda: rdb.hget(keys.poll_status("wr"), "last_error"), what="a poll error")
        assert rdb.hget(keys.poll_status("wr"), "last_error").startswith(b"answered 401")  # type: ignore[union-attr]
        assert rdb.exists(keys.poll_backoff("wr"))
        time.sleep(2)
        assert len(platform.requests) <= 2  # backing off, not hammering
        assert "check the source's key" in service.logs()
        assert "wrong-key" not in service.logs()
    finally:
        platform.stop()


def test_worksection_task_created_done_reopened_and_commented(
    start: Callable[[str], Service], sink_server: CaptureServer, slack: CaptureServer, rdb: redis.Redis
) -> None:
    platform = Worksection(WS_KEY).start()
    try:
        project = platform.add_project("Spring catalogue")
        source = (
            f"  ws: {{platform: worksection, account_url: '{platform.url}', api_key: {WS_KEY}, poll_interval: 1,"
            " comments: true}"
        )
        service = started(start, config(sink_server, slack, source))
        wait_until(lambda: rdb.exists(keys.poll_baseline("ws")), what="baseline")
        task = platform.add_task(project, "Proofread the brochure")
        wait_events(sink_server, 1)
        platform.act("post_comment", task, text="Started on page 3")
        wait_events(sink_server, 2)
        platform.act("close_task", task)
        wait_events(sink_server, 3)
        platform.act("reopen_task", task)
        wait_events(sink_server, 4)
        worker, scheduler = service.workers  # restarts mid-story: the second close happens while neither runs
        scheduler.kill()
        worker.kill()
        platform.act("close_task", task)
        time.sleep(1.5)
        service.start_scheduler()
        service.start_worker()
        got = wait_events(sink_server, 5, timeout=40)
        assert [e["type"] for e in got] == [
            "worksection.task.created",
            "worksection.task.comment_added",
            "worksection.task.status_changed",
            "worksection.task.status_changed",
            "worksection.task.status_changed",
        ]
        assert got[1]["data"]["text"] == "Started on page 3"  # type: ignore[index]
        assert [e["data"].get("change") for e in got[2:]] == ["done", "reopened", "done"]  # type: ignore[union-attr]
        assert [e["phase"] for e in got[2:]] == ["completed", "in_progress", "completed"]
        assert len({e["id"] for e in got}) == 5  # the second close is its own event, not the first's resend
        time.sleep(2.5)  # more polls see nothing new
        assert len(sink_server.requests) == 5
    finally:
        platform.stop()


def test_worktaps_accounts_created_updated_and_removed(
    start: Callable[[str], Service], sink_server: CaptureServer, slack: CaptureServer, rdb: redis.Redis
) -> None:
    platform = WorkTaps(WT_TOKEN).start()  # pages from 1, as the document's "page number" reads
    try:
        for n in range(5):
            platform.add_account("Old", f"Hand{n}", f"old{n}@example.com")
        source = (
            f"  wt: {{platform: worktaps, api_token: {WT_TOKEN}, base_url: '{platform.url}', poll_interval: 1,"
            " page_size: 2}"
        )
        service = started(start, config(sink_server, slack, source))
        wait_until(lambda: rdb.exists(keys.poll_baseline("wt")), what="baseline")
        ann = platform.add_account("Ann", "Lee", "ann@example.com")
        wait_events(sink_server, 1)
        platform.update_account(ann, meta={"jobTitle": "Lead editor"})
        wait_events(sink_server, 2)
        platform.remove_account(ann)
        got = wait_events(sink_server, 3)
        assert [e["type"] for e in got] == [
            "worktaps.account.created",
            "worktaps.account.updated",
            "worktaps.account.removed",
        ]
        assert got[1]["data"]["changed"]["jobTitle"] == {"from": "Editor", "to": "Lead editor"}  # type: ignore[index]

        service.stop()  # a restart does not announce anything again
        again = started(start, config(sink_server, slack, source))
        time.sleep(3)
        assert len(sink_server.requests) == 3
        assert json.loads(rdb.hget(keys.poll_status("wt"), "items") or b"0") == 5
        assert again.web.process.poll() is None
    finally:
        platform.stop()
