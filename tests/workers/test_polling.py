"""The poll engine in-process, against the session's Redis and the platform emulators."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.emulators.base import Request, Response
from tests.emulators.workreduce import WorkReduce
from tests.emulators.worksection import Worksection
from tests.emulators.worktaps import WorkTaps
from workers import polling, settings
from workhooks.platforms import api as platform_api
from workhooks.store import keys

QUEUE = keys.INBOX  # accepted events waiting for a drain job


@pytest.fixture
def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def write(sources: str) -> None:
        path = tmp_path / "workhooks.yaml"
        path.write_text(f"sources:\n{sources}\n")
        monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
        settings.config.cache_clear()

    yield write
    settings.config.cache_clear()


@pytest.fixture
def workreduce(configure: Callable[[str], None]) -> Iterator[WorkReduce]:
    platform = WorkReduce("key").start()
    configure(f"  wr: {{platform: workreduce, api_key: key, base_url: '{platform.url}/v2'}}")
    yield platform
    platform.stop()


def test_a_source_is_never_polled_twice_at_once(rdb: redis.Redis, workreduce: WorkReduce) -> None:
    rdb.set(keys.poll_lock("wr"), "someone else", ex=60)
    assert polling.poll(rdb, "wr") == {"outcome": "already polling"}
    assert workreduce.requests == []


def test_overlapping_polls_that_see_one_change_make_one_event(rdb: redis.Redis, workreduce: WorkReduce) -> None:
    number = workreduce.add_order("A")
    assert polling.poll(rdb, "wr")["emitted"] == 0  # the baseline: recorded, not announced
    workreduce.move(number, "Accepted")
    first, second = polling.poll(rdb, "wr"), polling.poll(rdb, "wr")  # no worker has processed the first yet
    assert (first["emitted"], second["emitted"]) == (1, 0)
    assert rdb.llen(QUEUE) == 1


def test_server_errors_are_retried_in_place(rdb: redis.Redis, workreduce: WorkReduce) -> None:
    polling.poll(rdb, "wr")
    workreduce.add_order("A")
    workreduce.fail_next(2, 503)
    assert polling.poll(rdb, "wr")["emitted"] == 1


def test_worksection_error_bodies_are_read_with_their_meaning(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    platform = Worksection("right-key").start()
    try:
        configure(f"  ws: {{platform: worksection, account_url: '{platform.url}', api_key: wrong-key}}")
        assert polling.poll(rdb, "ws")["outcome"] == "failed"
        status = rdb.hgetall(keys.poll_status("ws"))
        assert status[b"last_error"] == b"Worksection error 2: Action hash is missed or invalid (check api_key)"
        assert rdb.ttl(keys.poll_backoff("ws")) > 0
        platform.fail_next(1, 200, {"status": "error", "status_code": 20, "message": "Quota exceeded"})
        rdb.delete(keys.poll_backoff("ws"))
        configure(f"  ws: {{platform: worksection, account_url: '{platform.url}', api_key: right-key}}")
        assert polling.poll(rdb, "ws")["error"] == "Worksection error 20: Quota exceeded"
        assert rdb.ttl(keys.poll_backoff("ws")) > 200  # the quota backs off for minutes
    finally:
        platform.stop()


def test_worktaps_error_codes_are_read(rdb: redis.Redis, configure: Callable[[str], None]) -> None:
    platform = WorkTaps("right").start()
    try:
        configure(f"  wt: {{platform: worktaps, api_token: wrong, base_url: '{platform.url}'}}")
        assert polling.poll(rdb, "wt")["error"] == "WorkTaps error 40000: Unauthorized request"
    finally:
        platform.stop()


def queued_events(rdb: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(rdb.get(keys.event(event_id.decode())) or b"{}") for event_id in rdb.lrange(QUEUE, 0, -1)]


@pytest.mark.parametrize(
    ("lookup", "filter_finds_closed", "learned"),
    [
        (None, False, True),  # GET /orders/<n> answers a closed order
        (404, True, True),  # it refuses them, but the list filtered by status finds them
        (404, False, False),  # neither: the order is announced closed, final status unknown
    ],
    ids=["lookup-answers", "filter-finds", "neither"],
)
def test_orders_that_leave_the_open_list_are_announced_under_every_reading(
    rdb: redis.Redis, configure: Callable[[str], None], lookup: int | None, filter_finds_closed: bool, learned: bool
) -> None:
    platform = WorkReduce("key", closed_lookup_status=lookup, status_filter_finds_closed=filter_finds_closed).start()
    try:
        configure(f"  wr: {{platform: workreduce, api_key: key, base_url: '{platform.url}/v2'}}")
        approved, canceled = platform.add_order("A", status="Delivered"), platform.add_order("B", status="In QA")
        assert polling.poll(rdb, "wr")["emitted"] == 0  # the baseline
        platform.move(approved, "Approved")
        platform.cancel(canceled, by_client=True)
        assert polling.poll(rdb, "wr")["emitted"] == 2
        found = {event["subject"]: event for event in queued_events(rdb)}
        if learned:
            seen = [(found[f"order/{n}"]["data"]["status"], found[f"order/{n}"]["phase"]) for n in (approved, canceled)]
            assert seen == [("Approved", "completed"), ("Client Canceled", "canceled")]
        else:
            assert {event["type"] for event in found.values()} == {"workreduce.order.closed"}
            assert found[f"order/{approved}"]["data"]["previous_status"] == "Delivered"
        assert polling.poll(rdb, "wr")["emitted"] == 0  # closed orders are not looked up again
        lookups = [r for r in platform.requests if r.path.startswith("/v2/orders/")]
        polling.poll(rdb, "wr")
        assert [r for r in platform.requests if r.path.startswith("/v2/orders/")] == lookups
    finally:
        platform.stop()


class ShiftingWorkTaps(WorkTaps):
    """An account is removed right after the first page is served: offset paging then skips one."""

    remove_after_first_page: int | None = None

    def handle(self, request: Request) -> Response:
        answer = super().handle(request)
        if request.path == "/api/v1/accounts" and request.param("page") == "1" and self.remove_after_first_page:
            self.remove_account(self.remove_after_first_page)
            self.remove_after_first_page = None
        return answer


def test_an_account_deleted_while_a_poll_pages_is_the_only_one_removed(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    platform = ShiftingWorkTaps("token").start()
    try:
        configure(f"  wt: {{platform: worktaps, api_token: token, base_url: '{platform.url}', page_size: 2}}")
        accounts = [platform.add_account("A", f"N{n}", f"a{n}@example.com") for n in range(5)]
        assert polling.poll(rdb, "wt")["emitted"] == 0  # the baseline
        platform.remove_after_first_page = accounts[0]  # page 1 still showed it; page 2 now skips accounts[2]
        assert polling.poll(rdb, "wt")["emitted"] == 0  # accounts[2] was looked up: there, so not "removed"
        lookups = [r.path for r in platform.requests if r.path.startswith("/api/v1/account/")]
        assert lookups == [f"/api/v1/account/{accounts[2]}"]
        assert polling.poll(rdb, "wt")["emitted"] == 1  # the next listing misses accounts[0]: WorkTaps says 40003
        (removed,) = queued_events(rdb)
        assert (removed["type"], removed["subject"]) == ("worktaps.account.removed", f"account/{accounts[0]}")
        assert polling.poll(rdb, "wt")["emitted"] == 0
    finally:
        platform.stop()


def test_a_quota_error_part_way_keeps_what_was_read_and_the_next_poll_goes_on(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    platform = Worksection("key").start()
    try:
        configure(f"  ws: {{platform: worksection, account_url: '{platform.url}', api_key: key, comments: true}}")
        project = platform.add_project("P")
        tasks = [platform.add_task(project, f"T{n}") for n in range(3)]
        assert polling.poll(rdb, "ws")["emitted"] == 0  # the baseline
        for task in tasks:
            platform.act("post_comment", task, text=f"comment on {task}")
        platform.quota = platform.used + 2  # get_all_tasks and one get_comments, then "Quota exceeded"
        partial = polling.poll(rdb, "ws")
        assert (partial["outcome"], partial["emitted"]) == ("partial", 1)
        assert "Worksection error 20" in partial["error"] and rdb.ttl(keys.poll_backoff("ws")) > 200
        platform.quota = None
        rdb.delete(keys.poll_backoff("ws"))
        assert polling.poll(rdb, "ws")["emitted"] == 2  # the other two; the first is not announced again
        texts = sorted(event["data"]["text"] for event in queued_events(rdb))
        assert texts == sorted(f"comment on {task}" for task in tasks)
    finally:
        platform.stop()


def test_comment_reads_take_turns_within_the_budget(
    rdb: redis.Redis, configure: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = Worksection("key").start()
    try:
        configure(
            f"  ws: {{platform: worksection, account_url: '{platform.url}', api_key: key, comments: true,"
            " comments_per_poll: 1, poll_interval: 60}"
        )
        project = platform.add_project("P")
        tasks = [platform.add_task(project, f"T{n}") for n in range(3)]
        polling.poll(rdb, "ws")
        for task in tasks:
            platform.act("post_comment", task, text=f"comment on {task}")
        for turn in range(3):  # one poll interval after another
            monkeypatch.setattr(platform_api.time, "time", lambda turn=turn: 60.0 * turn)
            before = len([r for r in platform.requests if r.param("action") == "get_comments"])
            assert polling.poll(rdb, "ws")["emitted"] == 1
            after = len([r for r in platform.requests if r.param("action") == "get_comments"])
            assert after - before == 1  # one task's comments a poll, not all of them
        assert len(queued_events(rdb)) == 3
    finally:
        platform.stop()


def statuses_announced(rdb: redis.Redis) -> list[tuple[str, str]]:
    return [(event["data"].get("previous_status"), event["data"]["status"]) for event in queued_events(rdb)]


def test_a_subject_closed_longer_than_a_state_is_kept_is_forgotten_by_the_poller(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    platform = WorkReduce("key").start()
    try:
        configure(f"  wr: {{platform: workreduce, api_key: key, base_url: '{platform.url}/v2'}}")
        number = platform.add_order("A", status="Delivered")
        polling.poll(rdb, "wr")
        platform.move(number, "Approved")
        polling.poll(rdb, "wr")
        subject = f"order/{number}"
        assert rdb.hget(keys.poll_seen("wr"), subject) == b"null" and rdb.zscore(keys.poll_closed("wr"), subject)
        rdb.zadd(keys.poll_closed("wr"), {subject: time.time() - keys.STATE_TTL - 60})  # closed long ago
        polling.poll(rdb, "wr")
        assert rdb.hget(keys.poll_seen("wr"), subject) is None and rdb.zcard(keys.poll_closed("wr")) == 0
    finally:
        platform.stop()


def test_a_worksection_task_closed_reopened_and_closed_again_is_three_events(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    platform = Worksection("key").start()
    try:
        configure(f"  ws: {{platform: worksection, account_url: '{platform.url}', api_key: key}}")
        task = platform.add_task(platform.add_project("P"), "Proofread")
        polling.poll(rdb, "ws")  # the baseline
        for action in ("close_task", "reopen_task", "close_task"):
            platform.act(action, task)
            assert polling.poll(rdb, "ws")["emitted"] == 1, action
            assert polling.poll(rdb, "ws")["emitted"] == 0  # an overlapping poll sees the same: a resend
        assert statuses_announced(rdb) == [("active", "done"), ("done", "active"), ("active", "done")]
    finally:
        platform.stop()


def test_an_order_sent_back_through_qa_announces_its_second_in_qa(rdb: redis.Redis, workreduce: WorkReduce) -> None:
    number = workreduce.add_order("A", status="In QA")
    polling.poll(rdb, "wr")  # the baseline
    workreduce.send_back(number, "In Progress")
    assert polling.poll(rdb, "wr")["emitted"] == 1
    workreduce.move(number, "In QA")
    assert polling.poll(rdb, "wr")["emitted"] == 1
    assert statuses_announced(rdb) == [("In QA", "In Progress"), ("In Progress", "In QA")]


def test_a_field_changed_back_and_forth_is_announced_each_time(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    platform = WorkTaps("token").start()
    try:
        configure(f"  wt: {{platform: worktaps, api_token: token, base_url: '{platform.url}'}}")
        account = platform.add_account("Ann", "Lee", "ann@example.com")
        polling.poll(rdb, "wt")  # the baseline
        for title in ("Lead", "Editor", "Lead"):
            platform.update_account(account, meta={"jobTitle": title})
            assert polling.poll(rdb, "wt")["emitted"] == 1, title
        changes = [event["data"]["changed"]["jobTitle"]["to"] for event in queued_events(rdb)]
        assert changes == ["Lead", "Editor", "Lead"]
        platform.remove_account(account)
        assert polling.poll(rdb, "wt")["emitted"] == 1  # removed (WorkTaps: 40003)
        platform.accounts[account] = {**platform.accounts.get(account, {}), **queued_events(rdb)[-1]["data"]["account"]}
        assert polling.poll(rdb, "wt")["emitted"] == 1  # it came back: created again, a new occurrence
        assert [event["type"].rsplit(".", 1)[1] for event in queued_events(rdb)][-2:] == ["removed", "created"]
    finally:
        platform.stop()
