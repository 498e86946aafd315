"""Draining the inbox in-process: batches, a drain job run again after dying, a failing event handed off."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import structlog
from rq import Queue
from rq.job import Job

from tests.servers import TOKEN, CaptureServer, deliver_queued, free_port
from workers import inbox, settings
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import inbox as contract
from workhooks.store import keys
from workhooks.store.ingest import Ingest, prepare


@pytest.fixture
def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def write(text: str) -> None:
        path = tmp_path / "workhooks.yaml"
        path.write_text(text)
        monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
        settings.config.cache_clear()
        settings.sink.cache_clear()

    yield write
    settings.config.cache_clear()
    settings.sink.cache_clear()


def accept(rdb: redis.Redis, jobs: range) -> list[str]:
    ids = []
    for job in jobs:
        body = b'{"status": ["acp", "aer"], "job_id": %d}' % job
        event = Event.from_callback("wordy-main", wordy.parse(body, "application/json"))
        accepted = Ingest().submit_sync(rdb, prepare(event, "application/json", body))
        assert accepted.created
        ids.append(accepted.id)
    return ids


def queued_jobs(rdb: redis.Redis) -> list[str]:
    return [job_id.decode() for job_id in rdb.lrange(keys.QUEUE_KEY, 0, -1)]


def delivered(sink: CaptureServer) -> list[str]:
    return [request.headers["webhook-id"] for request in sink.requests]


@pytest.fixture
def to_sink(configure: Callable[[str], None], sink_server: CaptureServer) -> CaptureServer:
    configure(f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  erp: {{type: webhook, url: "{sink_server.url}", allow_private: true}}
routes:
  - to: [erp]
""")
    return sink_server


@pytest.fixture
def one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drain job that takes one batch and does not look again (the mechanics of a batch, its claim and hand-offs)."""
    monkeypatch.setattr(inbox, "LINGER", 0.0)


def test_a_burst_is_drained_in_batches_that_idle_workers_share(
    rdb: redis.Redis, to_sink: CaptureServer, one_batch: None
) -> None:
    ids = accept(rdb, range(120))
    first = queued_jobs(rdb)
    assert first == [f"drain-{ids[0]}"]  # one drain job for the whole burst so far

    assert inbox.drain(rdb, first[0]) == inbox.BATCH
    deliver_queued(rdb)
    assert sorted(delivered(to_sink)) == sorted(ids[: inbox.BATCH])  # each once (50 subjects: sent concurrently)
    second = queued_jobs(rdb)[1:]
    assert len(second) == 1  # events were left: the next drain job was queued for another worker
    assert inbox.drain(rdb, second[0]) == inbox.BATCH
    third = queued_jobs(rdb)[2:]
    assert inbox.drain(rdb, third[0]) == 20
    (fourth,) = queued_jobs(rdb)[3:]  # nothing left, but 20 at once (HELP_AT or more): another worker was asked
    assert inbox.drain(rdb, fourth) == 0
    assert len(queued_jobs(rdb)) == 4  # it found nothing and asked nobody
    deliver_queued(rdb)
    assert sorted(delivered(to_sink)) == sorted(ids) and rdb.llen(keys.INBOX) == 0
    assert rdb.keys(keys.claimed("*")) == []


def test_a_drain_job_run_again_after_dying_finishes_its_claimed_events_once(
    rdb: redis.Redis, to_sink: CaptureServer, one_batch: None
) -> None:
    ids = accept(rdb, range(10))
    job_id = queued_jobs(rdb)[0]
    assert contract.take(rdb, job_id, 4) == ids[:4]  # ... and the worker was SIGKILLed here
    assert rdb.lrange(keys.claimed(job_id), 0, -1) == [i.encode() for i in ids[:4]]

    assert inbox.drain(rdb, job_id) == 10  # RQ runs the same job id again: its claim first, then more
    deliver_queued(rdb)
    assert sorted(delivered(to_sink)) == sorted(ids)
    assert inbox.drain(rdb, job_id) == 0  # and again: nothing twice
    deliver_queued(rdb)
    assert sorted(delivered(to_sink)) == sorted(ids)


def test_events_given_back_keep_their_order_and_get_a_drain_job(
    rdb: redis.Redis, to_sink: CaptureServer, one_batch: None
) -> None:
    ids = accept(rdb, range(6))
    job_id = queued_jobs(rdb)[0]
    taken = contract.take(rdb, job_id, 4)
    assert contract.give_back(rdb, job_id, taken[1:]) == 3  # the first one was processed
    assert rdb.lrange(keys.INBOX, 0, -1) == [i.encode() for i in ids[1:]]
    assert rdb.llen(keys.claimed(job_id)) == 0
    (next_job,) = queued_jobs(rdb)[1:]
    assert inbox.drain(rdb, next_job) == 5
    deliver_queued(rdb)
    assert sorted(delivered(to_sink)) == sorted(ids[1:])


def test_at_a_steady_rate_one_drain_job_takes_what_arrives_while_it_works_and_no_job_is_queued_per_callback(
    rdb: redis.Redis, to_sink: CaptureServer
) -> None:
    ids = accept(rdb, range(3))
    (job_id,) = queued_jobs(rdb)
    assert contract.take(rdb, job_id, inbox.BATCH, hold=True) == ids  # it will look again when done with these
    assert rdb.get(keys.DRAIN_QUEUED) == job_id.encode() and 0 < rdb.pttl(keys.DRAIN_QUEUED) <= keys.DRAIN_HOLD_MS
    later = accept(rdb, range(3, 6))
    assert queued_jobs(rdb) == [job_id]  # three callbacks meanwhile: no drain job each
    assert inbox.drain(rdb, job_id) == 6  # its claim, then what arrived, then a take that finds nothing
    assert rdb.get(keys.DRAIN_QUEUED) is None  # ... and holds nothing: the next callback queues a job
    (last,) = accept(rdb, range(6, 7))
    assert queued_jobs(rdb) == [job_id, f"drain-{last}"]
    deliver_queued(rdb)
    assert sorted(delivered(to_sink)) == sorted(ids + later)


def test_a_large_batch_calls_in_another_worker_and_a_give_back_is_never_left_waiting_for_a_hold(
    rdb: redis.Redis, to_sink: CaptureServer
) -> None:
    ids = accept(rdb, range(contract.HELP_AT))
    (job_id,) = queued_jobs(rdb)
    assert contract.take(rdb, job_id, inbox.BATCH, hold=True) == ids
    (helper,) = queued_jobs(rdb)[1:]  # as many as HELP_AT at once: an idle worker is asked to join, nothing held
    assert rdb.get(keys.DRAIN_QUEUED) == helper.encode()
    assert inbox.drain(rdb, helper) == 0
    more = accept(rdb, range(100, 102))
    (other,) = queued_jobs(rdb)[2:]
    assert contract.take(rdb, other, inbox.BATCH, hold=True) == more and rdb.get(keys.DRAIN_QUEUED) == other.encode()
    assert contract.give_back(rdb, other, more) == 2  # out of time: its hold goes, and a job is queued for them
    (again,) = queued_jobs(rdb)[3:]
    assert rdb.get(keys.DRAIN_QUEUED) == again.encode()


def test_a_holder_that_died_is_replaced_when_its_hold_runs_out_and_its_rerun_repeats_nothing(
    rdb: redis.Redis, to_sink: CaptureServer
) -> None:
    ids = accept(rdb, range(2))
    (job_id,) = queued_jobs(rdb)
    assert contract.take(rdb, job_id, inbox.BATCH, hold=True) == ids  # ... and the worker was SIGKILLed here
    waiting = accept(rdb, range(2, 4))
    assert queued_jobs(rdb) == [job_id]
    assert not contract.sweep(rdb)  # while it holds, a sweep queues nothing
    time.sleep(keys.DRAIN_HOLD_MS / 1000 + 0.05)
    assert rdb.get(keys.DRAIN_QUEUED) is None  # the hold ran out
    assert contract.sweep(rdb)  # a worker's sweep: a drain job for what waited, with no callback arriving
    (replacement,) = queued_jobs(rdb)[1:]
    assert not contract.sweep(rdb)  # queued once
    (late,) = accept(rdb, range(4, 5))
    assert queued_jobs(rdb)[1:] == [replacement]  # the late callback finds it queued
    assert inbox.drain(rdb, replacement) == 3  # what waited, and the late one
    assert inbox.drain(rdb, job_id) == 2  # RQ runs the dead one again: its claim, once
    deliver_queued(rdb)
    assert sorted(delivered(to_sink)) == sorted([*ids, *waiting, late])


def test_an_event_that_fails_leaves_the_batch_for_a_job_of_its_own(
    rdb: redis.Redis, configure: Callable[[str], None], sink_server: CaptureServer
) -> None:
    configure(f"""
sources:
  wordy-main:
    platform: wordy
    token: {TOKEN}
    confirm: true
    api_key: wordy-api-key-for-tests
    base_url: http://127.0.0.1:{free_port()}/api/1.0
    timeout: 1
sinks:
  erp: {{type: webhook, url: "{sink_server.url}", allow_private: true}}
routes:
  - to: [erp]
""")  # Wordy's API is down: confirming a status callback raises
    ids = accept(rdb, range(3))
    job_id = queued_jobs(rdb)[0]
    assert inbox.drain(rdb, job_id) == 3
    assert rdb.llen(keys.claimed(job_id)) == 0
    jobs = {job.id: job for job in Queue(keys.QUEUE, connection=rdb).get_jobs()}
    for event_id in ids:  # each retried by RQ with backoff, as the processing job it is
        job = jobs[event_id]
        assert isinstance(job, Job) and (job.func_name, job.args) == (keys.PROCESS_EVENT, (event_id,))
        assert job.retries_left == 6
    assert sink_server.requests == []


def test_a_status_the_document_does_not_name_is_delivered_logged_and_counted(
    rdb: redis.Redis, to_sink: CaptureServer
) -> None:
    body = b'{"status": ["acr", "onhold"], "job_id": 3}'
    event = Event.from_callback("wordy-main", wordy.parse(body, "application/json"))
    accepted = Ingest().submit_sync(rdb, prepare(event, "application/json", body))
    with structlog.testing.capture_logs() as logs:
        assert inbox.drain(rdb, queued_jobs(rdb)[0]) == 1
    deliver_queued(rdb)
    assert [e["data"]["status_label"] for e in (r.json() for r in to_sink.wait_for(1))] == ["unknown"]
    assert any(line["event"] == "unknown_status" and line["status"] == "onhold" for line in logs)
    assert rdb.hget(keys.WORKER_COUNTERS, "workhooks_unknown_statuses|wordy-main") == b"1"
    assert accepted.created
