"""Callback platforms through their APIs: confirmation catches forged callbacks, reconciliation recovers lost ones."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.emulators.sharedworkforce import SharedWorkforce
from tests.emulators.wordy import Wordy
from tests.servers import TOKEN, CaptureServer, Service, wait_until
from workhooks.store import keys

pytestmark = pytest.mark.slow

WORDY_KEY, SWF_KEY = "wordy-api-key-e8ddc55d", "swf-key-acdc30b2"


def config(sink: CaptureServer, wordy: Wordy, swf: SharedWorkforce, extra: str = "") -> str:
    return f"""
sources:
  wordy-main:
    platform: wordy
    token: {TOKEN}
    api_key: {WORDY_KEY}
    base_url: {wordy.url}/api/1.0
{extra}
  swf: {{platform: sharedworkforce, api_key: {SWF_KEY}, base_url: "{swf.url}", reconcile_interval: 1}}
sinks:
  erp: {{type: webhook, url: "{sink.url}", allow_private: true, retry_intervals: [1]}}
routes: [{{to: [erp]}}]
"""


def ids(sink: CaptureServer) -> list[str]:
    return [request.headers["webhook-id"] for request in sink.requests]


@pytest.fixture
def platforms() -> Iterator[tuple[Wordy, SharedWorkforce]]:
    wordy, swf = Wordy(WORDY_KEY).start(), SharedWorkforce(SWF_KEY).start()
    yield wordy, swf
    wordy.stop()
    swf.stop()


def test_a_forged_wordy_status_callback_is_caught_by_confirmation(
    start: Callable[[str], Service],
    sink_server: CaptureServer,
    platforms: tuple[Wordy, SharedWorkforce],
    rdb: redis.Redis,
) -> None:
    wordy, swf = platforms
    wordy.add_job(123, "aer")
    service = start(config(sink_server, wordy, swf, "    confirm: true"))
    forged = service.wordy(b'{"status": ["aer", "c"], "job_id": 123}')  # Wordy says the job is still with the editor
    assert forged.status_code == 202
    wait_until(lambda: rdb.zcard(keys.MISMATCHES), what="a recorded mismatch")
    assert rdb.hget(keys.mismatch(forged.json()["id"]), "actual") == b"aer"
    real = wordy.move(123, "acr", f"{service.base}/hooks/wordy-main/{TOKEN}")
    assert real is not None and real.status_code == 202
    sink_server.wait_for(1)
    assert ids(sink_server) == [real.json()["id"]]
    time.sleep(1)
    assert len(sink_server.requests) == 1  # the forged one never went out
    assert "callback_not_confirmed" in service.logs() and WORDY_KEY not in service.logs()


def test_a_dropped_wordy_callback_is_recovered_by_reconciliation(
    start: Callable[[str], Service], sink_server: CaptureServer, platforms: tuple[Wordy, SharedWorkforce]
) -> None:
    wordy, swf = platforms
    wordy.add_job(77, "acp")
    service = start(config(sink_server, wordy, swf, "    reconcile_interval: 1"))
    service.start_scheduler()
    hook = f"{service.base}/hooks/wordy-main/{TOKEN}"
    first = wordy.move(77, "aer", hook)
    assert first is not None
    sink_server.wait_for(1)
    wordy.move(77, "acr")  # Wordy changes the status; its callback is lost
    recovered = sink_server.wait_for(2, timeout=20)
    assert len(recovered) == 2
    event = recovered[1].json()
    assert (event["type"], event["data"]["previous_status"], event["data"]["status"]) == (
        "wordy.job.status_changed", "aer", "acr",
    )  # fmt: skip
    late = service.wordy(b'{"status": ["aer", "acr"], "job_id": 77}')  # the callback turns up after all
    assert late.status_code == 200 and late.json() == {"id": event["id"], "duplicate": True}
    time.sleep(1.5)
    assert len(sink_server.requests) == 2


def test_a_dropped_shared_workforce_callback_is_recovered_by_reconciliation(
    start: Callable[[str], Service],
    sink_server: CaptureServer,
    platforms: tuple[Wordy, SharedWorkforce],
    rdb: redis.Redis,
) -> None:
    wordy, swf = platforms
    swf.complete(1, "Before we started", ["old"])  # baseline: not announced
    service = start(config(sink_server, wordy, swf))
    service.start_scheduler()
    wait_until(lambda: rdb.exists(keys.poll_baseline("swf")), what="baseline")
    hook = f"{service.base}/hooks/swf"
    swf.complete(2, "Tag photo", ["cat"], hook)
    sink_server.wait_for(1)
    swf.complete(3, "Remove offensive language", ["My name is Dougie."])  # callback lost
    recovered = sink_server.wait_for(2, timeout=20)
    assert len(recovered) == 2
    event = recovered[1].json()
    assert (event["type"], event["subject"]) == ("sharedworkforce.task.responses_received", "task/3")
    assert event["data"]["responses"] == [{"answer": "My name is Dougie.", "id": "100"}]
    callback = {"task": {"id": 3, "title": "Remove offensive language", "responses": event["data"]["responses"]}}
    late = service.post("/hooks/swf", json.dumps(callback).encode(), "application/json", **{"x-api-key": SWF_KEY})
    assert late.status_code == 200 and late.json()["id"] == event["id"]
    time.sleep(1.5)
    assert len(sink_server.requests) == 2
