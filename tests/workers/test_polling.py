"""The poll engine in-process, against the session's Redis and the platform emulators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.emulators.workreduce import WorkReduce
from tests.emulators.worksection import Worksection
from tests.emulators.worktaps import WorkTaps
from workers import polling, settings
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
    workreduce.set_status(number, "Activated")
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
