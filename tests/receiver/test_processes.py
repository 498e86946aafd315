"""`workhooks serve --workers N`: N real processes on one port, one limit and one set of metrics between them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from receiver.ratelimit import FailureBuckets
from tests.servers import TOKEN, Service

pytestmark = pytest.mark.slow

BURST = 6


def config(burst: int = BURST, per_minute: float = 0.01) -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
receiver:
  failure_limit: {{burst: {burst}, per_minute: {per_minute}}}
"""


def two_processes(tmp_path: Path, redis_url: str, text: str) -> tuple[Service, Path]:
    folder = tmp_path / "metrics"
    service = Service(
        tmp_path, redis_url, text, worker=False, WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(folder)
    )
    return service, folder


def fresh_post(base: str, path: str, body: bytes) -> int:
    """A new connection per request, as many senders would make: uvicorn's processes take turns accepting."""
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.post(path, content=body, headers={"content-type": "application/json"}).status_code


def counting_processes(folder: Path) -> set[str]:
    """The pids that have counted something (prometheus-client's multiprocess files: counter_<pid>.db)."""
    return {path.stem.removeprefix("counter_") for path in folder.glob("counter_*.db")}


def callbacks_counted(base: str) -> tuple[float, float]:
    """(callbacks accepted, acknowledgement-latency observations) in one scrape, on a connection of its own."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    accepted = observed = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "workhooks_callbacks_total" and sample.labels == {
                "source": "wordy-main",
                "outcome": "accepted",
            }:
                accepted += sample.value
            if sample.name == "workhooks_ack_seconds_count" and sample.labels == {"source": "wordy-main"}:
                observed += sample.value
    return accepted, observed


def test_the_failure_limit_is_divided_between_the_processes() -> None:
    one, two = FailureBuckets(burst=20, per_minute=60), FailureBuckets(burst=20, per_minute=60, processes=2)
    assert (one.burst, one.rate) == (20, 1.0) and (two.burst, two.rate) == (10, 0.5)
    assert FailureBuckets(burst=1, per_minute=60, processes=4).burst == 1  # never below one try


def test_two_processes_metrics_add_up_whichever_process_is_scraped(tmp_path: Path, redis_url: str) -> None:
    service, folder = two_processes(tmp_path, redis_url, config())
    try:
        sent, deadline = 0, time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while (sent < 40 or len(counting_processes(folder)) < 2) and sent < 400 and time.monotonic() < deadline:
                bodies = [b'{"status": ["acp", "aer"], "job_id": %d}' % (sent + i) for i in range(16)]
                statuses = list(
                    pool.map(lambda body: fresh_post(service.base, f"/hooks/wordy-main/{TOKEN}", body), bodies)
                )
                assert statuses == [202] * len(bodies)
                sent += len(bodies)
        assert len(counting_processes(folder)) == 2, "both processes took callbacks"
        scrapes = [callbacks_counted(service.base) for _ in range(8)]  # fresh connections: either process answers
        assert scrapes == [(float(sent), float(sent))] * len(scrapes)
    finally:
        service.stop()


def test_two_processes_hold_one_failure_limit_between_them(tmp_path: Path, redis_url: str) -> None:
    service, _ = two_processes(tmp_path, redis_url, config())
    try:
        with ThreadPoolExecutor(4) as pool:
            statuses = list(
                pool.map(lambda n: fresh_post(service.base, f"/hooks/wordy-main/wrong-{n}", b"{}"), range(40))
            )
        allowed = statuses.count(401)
        # each process holds BURST / 2: together never more than BURST, and at least one process's share
        assert BURST // 2 <= allowed <= BURST, statuses
        assert statuses.count(429) == len(statuses) - allowed
    finally:
        service.stop()
