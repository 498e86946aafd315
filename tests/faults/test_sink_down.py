"""A sink's HTTP server stopped and started again: connection refused is retried, the event arrives once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.conftest import KillableRedis
from tests.servers import TOKEN, CaptureServer, Service, free_port

pytestmark = pytest.mark.slow


def test_sink_server_stopped_then_started_gets_every_event_once(
    tmp_path: Path, killable_redis: KillableRedis, figures: list[str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/events"
    config = f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  erp: {{type: webhook, url: "{url}", allow_private: true, retry_intervals: [1, 1, 1, 1, 1, 1, 1, 1]}}
routes: [{{to: [erp]}}]
receiver: {{spool_dir: {tmp_path / "spool"}}}
"""
    service = Service(tmp_path, killable_redis.url, config)
    sink = None
    try:
        acked = [service.wordy(b'{"status": ["acp", "aer"], "job_id": %d}' % job).json()["id"] for job in range(10)]
        time.sleep(2.5)  # every first attempt, and some retries, meet a closed port
        sink = CaptureServer().start(port)
        started = time.monotonic()
        delivered = sink.wait_for(10, timeout=30)
        took = time.monotonic() - started
        time.sleep(1.5)
        assert sorted(request.headers["webhook-id"] for request in sink.requests) == sorted(acked)
        attempts = service.cli("deliveries", "--sink", "erp").stdout
        assert attempts.count("delivered") == 10
        figures.append(f"sink server down 2.5 s then started: 10/10 delivered once, {took:.1f} s after it came up")
        assert len(delivered) == 10
    finally:
        service.stop()
        if sink is not None:
            sink.stop()
