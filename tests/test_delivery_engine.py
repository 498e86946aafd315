"""The delivery engine with real workers (`workhooks worker` processes), a real Redis and local HTTP sinks.

Limits shared by every worker through Redis (max_in_flight, rate_limit), a circuit breaker that holds
and probes while another sink keeps delivering, pause and resume from the CLI, one subject's events
in order, and a worker SIGKILLed with 50 deliveries in flight (docs/delivery.md).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.servers import TOKEN, Captured, CaptureServer, Service, wait_until
from workhooks.store import keys

pytestmark = pytest.mark.slow


def status(job: int, new: str = "aer", previous: str = "acp") -> bytes:
    return json.dumps({"status": [previous, new], "job_id": job}).encode()


def ids(requests: list[Captured]) -> list[str]:
    return [request.headers["webhook-id"] for request in requests]


def subjects(requests: list[Captured]) -> list[str]:
    return [request.json()["subject"] for request in requests]


@pytest.fixture
def service(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(config: str, workers: int = 1, **env: str) -> Service:
        made = Service(tmp_path, redis_url, config, name=f"engine{len(started)}", worker=False, **env)
        started.append(made)
        for _ in range(workers):
            made.start_worker()
        return made

    yield start
    for made in started:
        made.stop()


def sinks(**lines: str) -> str:
    listed = "\n".join(f"  {name}: {line}" for name, line in lines.items())
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
{listed}
routes:
  - to: [{", ".join(lines)}]
"""


def test_max_in_flight_holds_across_two_workers_and_subjects_go_concurrently(
    service: Callable[..., Service], sink_server: CaptureServer, figures: list[str]
) -> None:
    sink_server.delay = 0.3
    running = service(
        sinks(erp=f'{{type: webhook, url: "{sink_server.url}", allow_private: true, max_in_flight: 3}}'), 2
    )
    accepted = [running.wordy(status(job)).json()["id"] for job in range(24)]
    started = time.monotonic()
    sink_server.wait_for(24, timeout=30)
    took = time.monotonic() - started
    time.sleep(0.5)
    assert sorted(ids(sink_server.requests)) == sorted(accepted)  # each once
    assert sink_server.most_in_flight == 3  # reached, never passed, by the two workers together
    assert took < 24 * 0.3  # ... and concurrent: one at a time would take 7.2 s
    figures.append(f"max_in_flight 3, two workers, 24 events to a 300 ms sink: at most 3 at once, {took:.1f} s")


def test_a_rate_limit_holds_across_two_workers_and_waiting_is_no_failure(
    service: Callable[..., Service], sink_server: CaptureServer, rdb: redis.Redis, figures: list[str]
) -> None:
    rate = "rate_limit: {per_second: 5, burst: 2}, retry_intervals: []"
    running = service(sinks(erp=f'{{type: webhook, url: "{sink_server.url}", allow_private: true, {rate}}}'), 2)
    for job in range(16):
        assert running.wordy(status(job)).status_code == 202
    sink_server.wait_for(16, timeout=30)
    times = sorted(at for at, _ in sink_server.answered)
    # GCRA at 5/s with a burst of 2: never more than 2 + 5 t attempts begun in any t seconds; measured where
    # they arrive, so allow 250 ms for a sending thread's first connection, slower to arrive than the next
    for first in range(len(times)):
        for last in range(first + 1, len(times)):
            assert last - first + 1 <= 2 + 5 * (times[last] - times[first] + 0.25), (first, last)
    spread = times[-1] - times[0]
    assert spread >= (16 - 2) / 5 - 0.25  # the same allowance for a first connection
    counters = rdb.hgetall(keys.WORKER_COUNTERS)
    assert counters[b"workhooks_deliveries|erp|delivered"] == b"16"  # none failed, none dead: waiting is not failing
    assert float(counters[b"workhooks_delivery_wait_seconds_sum|erp"]) > 1.0  # and the wait shows
    figures.append(f"rate 5/s burst 2, two workers, 16 events: spread over {spread:.2f} s, none failed")


def test_the_breaker_opens_holds_probes_closes_and_drains_in_order_while_another_sink_delivers(
    service: Callable[..., Service], rdb: redis.Redis, figures: list[str]
) -> None:
    failing = threading.Event()
    failing.set()
    erp = CaptureServer(status=lambda _: 503 if failing.is_set() else 200).start()
    archive = CaptureServer().start()
    try:
        breaker = "breaker: {failures: 3, probe_after: 1, probe_max: 2}, retry_intervals: [1, 1]"
        running = service(
            sinks(
                erp=f'{{type: webhook, url: "{erp.url}", allow_private: true, max_in_flight: 1, {breaker}}}',
                archive=f'{{type: webhook, url: "{archive.url}", allow_private: true}}',
            )
        )
        order = [(job, new) for new in ("aer", "acr", "c") for job in (1, 2, 3)]
        accepted = [running.wordy(status(job, new)).json()["id"] for job, new in order]
        archive.wait_for(len(order), timeout=20)  # the other sink is never slowed
        wait_until(lambda: running.cli("sinks", "list", "--json").stdout.count('"state": "open"') == 1, what="open")
        tried = len(erp.arrived)
        time.sleep(3)  # open: held, probed about every 1-2 s, not burned through the retries (only 2 of them)
        probes = len(erp.arrived) - tried
        assert 1 <= probes <= 4
        listed = json.loads(running.cli("sinks", "list", "--json").stdout)["sinks"]
        erp_row = next(row for row in listed if row["name"] == "erp")
        assert erp_row["state"] in ("open", "half_open") and erp_row["held"] == len(order)
        assert rdb.zcard(keys.DEAD_INDEX) == 0  # nothing dead: held, not failed for good
        failing.clear()
        erp.wait_for(len(order), timeout=20)
        assert sorted(ids(erp.requests)) == sorted(accepted)
        for job in (1, 2, 3):  # per subject, in the order accepted
            seen = [r.json()["data"]["status"] for r in erp.requests if r.json()["subject"] == f"job/{job}"]
            assert seen == ["aer", "acr", "c"]
        wait_until(lambda: '"state": "closed"' in running.cli("sinks", "list", "--json").stdout, what="closed")
        assert "sink_breaker_opened" in running.logs() and "sink_breaker_closed" in running.logs()
        transitions = rdb.hgetall(keys.WORKER_COUNTERS)
        assert int(transitions[b"workhooks_sink_breaker_transitions|erp|open"]) >= 1
        assert transitions[b"workhooks_sink_breaker_transitions|erp|closed"] == b"1"
        figures.append(
            f"breaker: {tried} failed attempts opened it, {probes} probes in 3 s, then {len(order)} held "
            "deliveries out in order; archive sink delivered all meanwhile"
        )
    finally:
        erp.stop()
        archive.stop()


def test_pause_and_resume_from_the_cli_hold_then_send_in_order(
    service: Callable[..., Service], sink_server: CaptureServer
) -> None:
    running = service(sinks(erp=f'{{type: webhook, url: "{sink_server.url}", allow_private: true}}'))
    paused = running.cli("sinks", "pause", "erp", "--reason", "ERP maintenance window")
    assert paused.returncode == 0 and "paused" in paused.stdout
    assert running.cli("sinks", "pause", "nope").returncode == 2
    order = [(job, new) for new in ("aer", "acr") for job in (1, 2)]
    for job, new in order:
        assert running.wordy(status(job, new)).status_code == 202
    wait_until(lambda: '"held": 4' in running.cli("sinks", "list", "--json").stdout, what="4 held")
    time.sleep(1.5)
    assert sink_server.arrived == []  # no attempt while paused
    shown = running.cli("sinks", "list").stdout
    assert "paused (ERP maintenance window)" in shown and "held 4" in shown
    assert "resumed" in running.cli("sinks", "resume", "erp").stdout
    sink_server.wait_for(4, timeout=15)
    for job in (1, 2):
        seen = [r.json()["data"]["status"] for r in sink_server.requests if r.json()["subject"] == f"job/{job}"]
        assert seen == ["aer", "acr"]
    assert all(request.headers.get("webhook-id") for request in sink_server.requests)
    assert "was not paused" in running.cli("sinks", "resume", "erp").stdout


def test_one_subjects_events_reach_a_slow_sink_in_the_order_accepted(
    service: Callable[..., Service], sink_server: CaptureServer
) -> None:
    sink_server.delay = 0.05
    running = service(sinks(erp=f'{{type: webhook, url: "{sink_server.url}", allow_private: true}}'), 2)
    statuses = ["aer", "acr"] * 5
    previous = "acp"
    for new in statuses:
        assert running.wordy(status(7, new, previous)).status_code == 202
        previous = new
    for job in range(20):  # other subjects meanwhile, sent concurrently
        running.wordy(status(100 + job))
    sink_server.wait_for(30, timeout=30)
    mine = [r.json()["data"]["status"] for r in sink_server.requests if r.json()["subject"] == "job/7"]
    assert mine == statuses
    assert sink_server.most_in_flight > 1


def test_a_worker_sigkilled_with_50_deliveries_in_flight_loses_none_and_repeats_only_those(
    service: Callable[..., Service], sink_server: CaptureServer, rdb: redis.Redis, figures: list[str]
) -> None:
    sink_server.delay = 1.5
    running = service(sinks(erp=f'{{type: webhook, url: "{sink_server.url}", allow_private: true, timeout: 3}}'))
    # 54: a sink's first 4 attempts say how slow it is before the others go out (workers/dispatch.py)
    accepted = [running.wordy(status(job)).json()["id"] for job in range(54)]
    wait_until(lambda: sink_server.in_flight >= 50, timeout=30, what="50 in flight")
    running.worker.kill()  # SIGKILL: the sink still answers the 50 requests, and nobody records them
    killed = time.monotonic()
    running.start_worker()  # takes them again once their leases run out (timeout 3 s + 10 s)

    def recorded() -> bool:
        found = [rdb.hget(keys.delivery(f"{event_id}-erp"), "status") for event_id in accepted]
        return found == [b"delivered"] * len(accepted)

    wait_until(recorded, timeout=60, what="all recorded as delivered")
    took = time.monotonic() - killed
    time.sleep(1.0)
    counted = Counter(ids(sink_server.requests))
    assert set(counted) == set(accepted)  # none lost
    assert set(counted.values()) <= {1, 2}  # the cut-short attempt, and its one repeat (same webhook-id)
    repeated = sum(count - 1 for count in counted.values())
    assert repeated <= sink_server.most_in_flight  # only what was in flight when it was killed
    figures.append(
        f"worker SIGKILLed with {sink_server.most_in_flight} in flight: {len(counted)}/{len(accepted)} recorded "
        f"delivered {took:.1f} s later, {repeated} sent twice "
        "(the killed attempts, repeated with the same webhook-id)"
    )
