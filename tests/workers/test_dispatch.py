"""The sinks' queues in-process against a real Redis: take's refusals, leases, replay, the previous release's data."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue

from tests.servers import TOKEN, CaptureServer, deliver_queued
from workers import delivery, dispatch, settings
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import keys, outbox


@pytest.fixture
def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def write(sink: str) -> None:
        path = tmp_path / "workhooks.yaml"
        path.write_text(f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  erp: {sink}
routes:
  - to: [erp]
""")
        monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
        settings.config.cache_clear()
        settings.sink.cache_clear()

    yield write
    settings.config.cache_clear()
    settings.sink.cache_clear()


def event(job: int, new: str = "aer") -> Event:
    body = b'{"status": ["acp", "%s"], "job_id": %d}' % (new.encode(), job)
    parsed = Event.from_callback("wordy-main", wordy.parse(body, "application/json"))
    return dataclasses.replace(parsed, id=f"evt_{job}_{new}")


def opened(rdb: redis.Redis, *events: Event) -> None:
    for item in events:
        rdb.set(keys.event(item.id), item.to_json())
        with rdb.pipeline(transaction=True) as pipe:
            delivery.open_deliveries(pipe, item, ["erp"])
            pipe.execute()


TOKENS = itertools.count()


def take(rdb: redis.Redis, in_flight: int = 8, lease_ms: int = 60_000) -> outbox.Taken | outbox.Refused:
    found, refused = outbox.take(rdb, "erp", f"test-{next(TOKENS)}", in_flight, lease_ms, 0, 1)  # a token per take
    return found[0] if found else refused


def test_one_subject_has_one_delivery_in_flight_and_its_next_waits_for_it(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure("{type: log}")
    first, second, other = event(1, "aer"), event(1, "acr"), event(2)
    opened(rdb, first, second, other)
    taken = take(rdb)
    assert isinstance(taken, outbox.Taken) and taken.delivery_id == f"{first.id}-erp"
    also = take(rdb)
    assert isinstance(also, outbox.Taken) and also.delivery_id == f"{other.id}-erp"  # another subject: at once
    assert take(rdb) == outbox.Refused("empty", 0)  # job/1's second waits for its first
    assert delivery.attempt(rdb, taken) == delivery.DELIVERED
    after = take(rdb)
    assert isinstance(after, outbox.Taken) and after.delivery_id == f"{second.id}-erp"


def test_a_completion_takes_the_next_of_its_sink_in_the_same_call_and_a_lane_still_waits_for_its_head(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure("{type: log}")
    first, second, other, third = event(1, "aer"), event(1, "acr"), event(2), event(3)
    opened(rdb, first, second, other, third)
    taken = take(rdb, in_flight=2)
    assert isinstance(taken, outbox.Taken) and taken.delivery_id == f"{first.id}-erp"
    then = outbox.Next("test-then", 2, 60_000, 0, 1, count=8)
    assert delivery.attempt(rdb, taken, lambda: then) == delivery.DELIVERED
    # in that same call, up to the cap of 2: job/2 and job/3, waiting longer than job/1's next (free since its head
    # is done)
    assert [item.delivery_id for item in then.found] == [f"{other.id}-erp", f"{third.id}-erp"]
    assert then.refused == outbox.Refused("full", 0)
    assert rdb.hget(keys.delivery(f"{first.id}-erp"), "status") == b"delivered"
    lost = dataclasses.replace(then.found[0], token="not-its-lease")
    again = outbox.Next("test-again", 2, 60_000, 0, 1, count=8)
    assert delivery.attempt(rdb, lost, lambda: again) == delivery.DELIVERED  # its lease lost: no lane moves
    assert again.found == [] and again.refused == outbox.Refused("full", 0)
    for item in then.found:
        assert delivery.attempt(rdb, item) == delivery.DELIVERED
    last = take(rdb)
    assert isinstance(last, outbox.Taken) and last.delivery_id == f"{second.id}-erp"


def test_full_paused_and_an_expired_lease_is_taken_again_with_the_same_delivery(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure("{type: log}")
    first, second = event(1), event(2)
    opened(rdb, first, second)
    taken = take(rdb, in_flight=1, lease_ms=200)
    assert isinstance(taken, outbox.Taken)
    assert take(rdb, in_flight=1) == outbox.Refused("full", 0)
    outbox.pause(rdb, "erp", "maintenance", "now")
    assert take(rdb, in_flight=1) == outbox.Refused("paused", 0)
    assert outbox.resume(rdb, "erp") and not outbox.resume(rdb, "erp")
    time.sleep(0.25)  # the dispatcher holding it died: its lease runs out
    again = [take(rdb, in_flight=2), take(rdb, in_flight=2)]
    assert {item.delivery_id for item in again if isinstance(item, outbox.Taken)} == {
        f"{first.id}-erp",
        f"{second.id}-erp",
    }  # job/1's the same one again (job/2, waiting longer, first)
    assert delivery.attempt(rdb, taken) == delivery.DELIVERED  # the old holder finishing late changes no lane
    assert outbox.states(rdb, ["erp"])["erp"].held == 2 and rdb.llen(keys.outbox_lane("erp", "wordy-main:job/1")) == 1


def test_a_retry_job_the_previous_release_scheduled_is_queued_once_and_delivered_once(
    rdb: redis.Redis, configure: Callable[[str], None], sink_server: CaptureServer
) -> None:
    configure(f'{{type: webhook, url: "{sink_server.url}", allow_private: true, retry_intervals: [1, 1, 1]}}')
    item = event(3)
    rdb.set(keys.event(item.id), item.to_json())
    # As that release left it: a pending delivery with one failed attempt, in no lane, and its retry job
    rdb.hset(keys.delivery(f"{item.id}-erp"), mapping={"event_id": item.id, "sink": "erp", "status": "pending",
                                                       "attempts": 1, "queued": 1})  # fmt: skip
    job = Queue(keys.QUEUE, connection=rdb).create_job(keys.DELIVER, args=(item.id, "erp", 2))
    assert job.func_name == keys.DELIVER
    assert delivery.deliver(rdb, item.id, "erp", 2) == "queued"
    assert delivery.deliver(rdb, item.id, "erp", 2) == "already queued"  # RQ ran it twice: still once
    assert rdb.hget(keys.delivery(f"{item.id}-erp"), "failures") == b"1"  # its schedule goes on where it was
    deliver_queued(rdb)
    assert [r.headers["webhook-id"] for r in sink_server.requests] == [item.id]
    assert delivery.deliver(rdb, item.id, "erp", 3) == delivery.DELIVERED


def test_replay_goes_after_the_subjects_queued_deliveries(rdb: redis.Redis, configure: Callable[[str], None]) -> None:
    configure('{type: webhook, url: "http://127.0.0.1:9/x", allow_private: true, retry_intervals: []}')
    dead = event(4, "aer")
    opened(rdb, dead)
    deliver_queued(rdb)
    assert delivery.get(rdb, f"{dead.id}-erp").status == delivery.DEAD  # type: ignore[union-attr]
    outbox.pause(rdb, "erp", "", "")
    later = event(4, "acr")
    opened(rdb, later)
    assert delivery.replay(rdb, f"{dead.id}-erp") == "queued"
    assert delivery.replay(rdb, f"{dead.id}-erp") == "already pending"
    lane = [raw.decode() for raw in rdb.lrange(keys.outbox_lane("erp", "wordy-main:job/4"), 0, -1)]
    assert lane == [f"{later.id}-erp", f"{dead.id}-erp"]
    assert rdb.zscore(keys.DEAD_INDEX, f"{dead.id}-erp") is None


def test_a_probe_that_fails_spends_no_retry_and_backs_off(rdb: redis.Redis, configure: Callable[[str], None]) -> None:
    configure(
        '{type: webhook, url: "http://127.0.0.1:9/x", allow_private: true, retry_intervals: [1],'
        " breaker: {failures: 1, probe_after: 0.2, probe_max: 0.3}}"
    )
    opened(rdb, event(5))
    first = take(rdb)
    assert isinstance(first, outbox.Taken) and not first.probe
    assert delivery.attempt(rdb, first) == delivery.PENDING  # its one retry is scheduled; the breaker opens
    state = outbox.states(rdb, ["erp"])["erp"]
    assert state.state == outbox.OPEN
    refused = take(rdb)
    assert isinstance(refused, outbox.Refused) and refused.reason == "open"
    time.sleep(1.3)  # past the probe time and the retry's
    probe = take(rdb)
    assert isinstance(probe, outbox.Taken) and probe.probe
    assert delivery.attempt(rdb, probe) == delivery.HELD  # not dead: a probe spends no retry
    fields = rdb.hgetall(keys.delivery(probe.delivery_id))
    assert fields[b"status"] == b"pending" and fields[b"failures"] == b"1" and fields[b"attempts"] == b"2"
    assert int(rdb.hget(keys.outbox("erp"), "backoff_ms") or 0) == 300  # doubled, capped at probe_max


def test_sink_defaults_and_rate_limits_validate() -> None:
    from workhooks.config.schema import Config

    config = Config.model_validate(
        {
            "sinks": {
                "hook": {"type": "webhook", "url": "https://erp.example/x"},
                "chat": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"},
                "slow": {"type": "log", "max_in_flight": 2, "rate_limit": {"per_minute": 30, "burst": 5}},
            }
        }
    )
    hook, chat, slow = config.sinks["hook"], config.sinks["chat"], config.sinks["slow"]
    assert (hook.in_flight(), hook.rate()) == (64, None)
    assert chat.in_flight() == 1 and chat.rate() is not None and chat.rate().interval_ms() == 1000  # type: ignore[union-attr]
    assert slow.in_flight() == 2 and slow.rate().interval_ms() == 2000  # type: ignore[union-attr]
    for bad in ({}, {"per_second": 1, "per_minute": 60}, {"per_second": 0}):
        with pytest.raises(ValueError, match="rate_limit"):
            Config.model_validate({"sinks": {"x": {"type": "log", "rate_limit": bad}}})


def test_a_holder_that_lost_its_lease_records_its_attempt_but_no_dead_letter(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure('{type: webhook, url: "http://127.0.0.1:9/x", allow_private: true, retry_intervals: []}')
    opened(rdb, event(6))
    stale = take(rdb, lease_ms=100)
    time.sleep(0.2)  # its worker stalled past the lease: another takes the same delivery
    live = take(rdb)
    assert isinstance(stale, outbox.Taken) and isinstance(live, outbox.Taken)
    assert delivery.attempt(rdb, stale) == delivery.DEAD  # what it saw; but it no longer holds the delivery
    assert rdb.zcard(keys.DEAD_INDEX) == 0 and rdb.hget(keys.delivery(stale.delivery_id), "status") == b"pending"
    assert delivery.attempt(rdb, live) == delivery.DEAD
    assert rdb.zrange(keys.DEAD_INDEX, 0, -1) == [live.delivery_id.encode()]


def test_a_slow_attempt_keeps_its_lease_while_its_worker_renews_it(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure("{type: log}")
    opened(rdb, event(7))
    slow = take(rdb, lease_ms=300)
    assert isinstance(slow, outbox.Taken)
    for _ in range(3):
        time.sleep(0.2)
        assert outbox.renew(rdb, "erp", 300, [slow]) == 1
    assert take(rdb) == outbox.Refused("empty", 0)  # 600 ms on, still its: nobody sends it twice
    assert outbox.renew(rdb, "erp", 300, [dataclasses.replace(slow, token="another")]) == 0


def test_queue_pending_leaves_a_delivery_the_previous_release_attempted_to_its_retry_job(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure("{type: log}")
    item = event(8)
    rdb.set(keys.event(item.id), item.to_json())
    rdb.hset(keys.delivery(f"{item.id}-erp"), mapping={"event_id": item.id, "sink": "erp", "status": "pending",
                                                       "attempts": 1, "queued": 1})  # fmt: skip
    assert delivery.queue_pending(rdb, item, ["erp"]) == []  # its Retry-After and schedule stay its job's
    rdb.hset(keys.delivery(f"{item.id}-erp"), mapping={"attempts": 0})
    rdb.hdel(keys.delivery(f"{item.id}-erp"), "queued")
    assert delivery.queue_pending(rdb, item, ["erp"]) == ["erp"]  # never attempted nor queued: now queued


def test_failures_of_attempts_out_when_the_breaker_opened_spend_no_retry(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure(
        '{type: webhook, url: "http://127.0.0.1:9/x", allow_private: true, retry_intervals: [60],'
        " breaker: {failures: 1, probe_after: 30}}"
    )
    opened(rdb, event(9), event(10))
    first, second = take(rdb), take(rdb)
    assert isinstance(first, outbox.Taken) and isinstance(second, outbox.Taken)
    assert delivery.attempt(rdb, first) == delivery.PENDING  # counted; the breaker opens
    assert delivery.attempt(rdb, second) == delivery.HELD  # out when it opened: held, not counted
    assert rdb.hget(keys.delivery(second.delivery_id), "failures") == b"0"
    assert outbox.states(rdb, ["erp"])["erp"].state == outbox.OPEN
    assert int(rdb.hget(keys.outbox("erp"), "backoff_ms") or 0) == 30_000  # and did not move the breaker


def test_a_delivery_taken_by_a_stopping_worker_is_put_back_for_another_with_nothing_counted(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure("{type: log}")
    item = event(7)
    opened(rdb, item)
    taken = take(rdb, in_flight=1)
    assert isinstance(taken, outbox.Taken)
    assert take(rdb, in_flight=1) == outbox.Refused("full", 0)
    delivery.put_back(rdb, taken)
    again = take(rdb, in_flight=1)  # at once, by whoever looks next
    assert isinstance(again, outbox.Taken) and again.delivery_id == taken.delivery_id and again.attempts == 0
    assert delivery.attempts(rdb, item.id) == []


def test_threads_promised_to_what_finishing_attempts_take_never_exceed_the_pool(
    rdb: redis.Redis, configure: Callable[[str], None]
) -> None:
    configure("{type: log, max_in_flight: 8}")
    opened(rdb, event(8), event(9))
    first, second = take(rdb), take(rdb)
    assert isinstance(first, outbox.Taken) and isinstance(second, outbox.Taken)
    dispatcher = dispatch.Dispatcher(rdb, size=3)
    try:
        dispatcher.busy = {(t.sink, t.member): t for t in (first, second)}  # two attempts finishing at once
        one = dispatcher._then(first)
        assert one is not None and one.count == 2 and dispatcher.free() == 0  # itself and the one free thread
        other = dispatcher._then(second)
        assert other is not None and other.count == 1  # only its own thread is left to it
        assert dispatcher._next(one) is None and dispatcher._next(other) is None  # they took nothing
        assert dispatcher.reserved == 0 and dispatcher.free() == 1
    finally:
        dispatcher.pool.shutdown()
