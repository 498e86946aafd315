"""Redis Sentinel: the primary is SIGKILLed under a steady stream; receivers and workers follow the failover."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.conftest import SentinelCluster
from tests.faults.test_redis_down import config
from tests.servers import Captured, CaptureServer, Service, wait_until

pytestmark = pytest.mark.slow

RATE = 40  # callbacks per second, spread over both receivers
DURATION = 10.0
KILL_AT = 3.0


def test_primary_killed_under_load_every_acknowledged_callback_is_delivered(
    tmp_path: Path, sentinel_cluster: SentinelCluster, sink_server: CaptureServer, figures: list[str]
) -> None:
    services = [
        Service(
            tmp_path,
            sentinel_cluster.url,
            config(sink_server, tmp_path / f"spool{n}"),
            name=f"svc{n}",
            WORKHOOKS_MAINTENANCE_INTERVAL="2",
        )
        for n in range(2)
    ]
    acked: dict[str, float] = {}  # subject -> when it was acknowledged (monotonic)
    latencies: list[float] = []
    failures: list[str] = []
    killed: dict[str, float] = {}
    refused: list[str] = []

    def refuse_first(request: Captured) -> int:  # so the first delivery needs RQ's scheduler, on Sentinel too
        if not refused:
            refused.append(request.headers["webhook-id"])
            return 503
        return 200

    sink_server.status = refuse_first
    try:
        assert services[0].wordy(b'{"status": ["acp", "aer"], "job_id": 1}').status_code == 202
        assert [r.headers["webhook-id"] for r in sink_server.wait_for(1)] == refused  # retried 1 s later
        old_primary = sentinel_cluster.primary()

        def kill_later() -> None:
            time.sleep(KILL_AT)
            killed["at"] = time.monotonic()
            sentinel_cluster.kill_primary()
            wait_until(lambda: sentinel_cluster.primary() != old_primary, timeout=30, what="a new primary")
            killed["promoted"] = time.monotonic()

        killer = threading.Thread(target=kill_later)
        started = time.monotonic()
        killer.start()
        for n in range(int(RATE * DURATION)):
            due = started + n / RATE
            time.sleep(max(0.0, due - time.monotonic()))
            body = json.dumps({"status": ["acp", "aer"], "job_id": 1000 + n}).encode()
            sent = time.monotonic()
            response = services[n % 2].wordy(body)
            latencies.append(time.monotonic() - sent)
            if response.status_code != 202:
                failures.append(f"{response.status_code} {response.text[:100]}")
                continue
            acked[f"job/{1000 + n}"] = time.monotonic()  # spooled ones answer a receipt: follow the subject
        killer.join()
        assert failures == []
        assert sentinel_cluster.primary() != old_primary

        def delivered() -> set[str]:
            return {request.json()["subject"] for request in sink_server.requests}

        wait_until(lambda: set(acked) <= delivered(), timeout=120, what="every acknowledged callback delivered")
        all_delivered = time.monotonic()
        spooled = sum(service.logs().count('"redis_unavailable"') for service in services)
        repeats = sum(count - 1 for count in Counter(r.headers["webhook-id"] for r in sink_server.requests).values())
        after_kill = [event for event, at in acked.items() if at > killed["at"]]
        assert after_kill, "callbacks were sent after the kill"
        figures.append(
            f"sentinel failover: primary SIGKILLed under {RATE}/s over 2 receivers; {len(acked)}/{len(acked)} "
            f"callbacks acknowledged 202 (slowest ack {max(latencies) * 1000:.0f} ms), all delivered; "
            f"{repeats} delivered twice (at-least-once across a failover); new primary "
            f"{killed['promoted'] - killed['at']:.1f} s after the kill (receivers spooled meanwhile: {spooled} "
            f"breaker trips), the last acknowledged callback delivered {all_delivered - killed['at']:.1f} s after it"
        )
    finally:
        for service in services:
            service.stop()
