"""Callback platforms through their APIs: confirmation catches forged callbacks, reconciliation recovers lost ones."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from tests.emulators.base import Outbox
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


def delivered(outbox: Outbox) -> list[int | None]:
    """Send what the platform owes now; the receiver's answers."""
    return [callback.status for callback in outbox.flush()]


def test_a_forged_wordy_status_callback_is_caught_by_confirmation(
    start: Callable[[str], Service],
    sink_server: CaptureServer,
    platforms: tuple[Wordy, SharedWorkforce],
    rdb: redis.Redis,
) -> None:
    wordy, swf = platforms
    service = start(config(sink_server, wordy, swf, "    confirm: true"))
    job = wordy.add_job(status="aer", callback_url=f"{service.base}/hooks/wordy-main/{TOKEN}")
    forged = service.wordy(f'{{"status": ["aer", "c"], "job_id": {job}}}'.encode())  # Wordy: still with the editor
    assert forged.status_code == 202
    wait_until(lambda: rdb.zcard(keys.MISMATCHES), what="a recorded mismatch")
    assert rdb.hget(keys.mismatch(forged.json()["id"]), "actual") == b"aer"
    wordy.set_status(job, "acr")  # the editor returns the job: Wordy calls back
    assert delivered(wordy.outbox) == [202]
    sink_server.wait_for(1)
    assert [event["data"]["status"] for event in (r.json() for r in sink_server.requests)] == ["acr"]
    time.sleep(1)
    assert len(sink_server.requests) == 1  # the forged one never went out
    assert "callback_not_confirmed" in service.logs() and WORDY_KEY not in service.logs()
    listed = service.cli("events", "list", "--status", "mismatch")
    assert listed.returncode == 0 and forged.json()["id"] in listed.stdout and "mismatch" in listed.stdout
    assert b'workhooks_mismatches_total{source="wordy-main"} 1.0' in httpx.get(f"{service.base}/metrics").content


def test_a_dropped_wordy_callback_is_recovered_by_reconciliation(
    start: Callable[[str], Service], sink_server: CaptureServer, platforms: tuple[Wordy, SharedWorkforce]
) -> None:
    wordy, swf = platforms
    service = start(config(sink_server, wordy, swf, "    reconcile_interval: 1"))
    service.start_scheduler()
    job = wordy.add_job(status="acp", callback_url=f"{service.base}/hooks/wordy-main/{TOKEN}")
    wordy.set_status(job, "aer")
    assert delivered(wordy.outbox) == [202]
    sink_server.wait_for(1)
    wordy.outbox.drop_next()
    wordy.set_status(job, "acr")  # Wordy changes the status; its callback is lost
    assert delivered(wordy.outbox) == []
    recovered = sink_server.wait_for(2, timeout=20)
    assert len(recovered) == 2
    event = recovered[1].json()
    assert (event["type"], event["data"]["previous_status"], event["data"]["status"]) == (
        "wordy.job.status_changed", "aer", "acr",
    )  # fmt: skip
    late = service.wordy(wordy.outbox.dropped[0].body)  # the callback turns up after all
    assert late.status_code == 200 and late.json() == {"id": event["id"], "duplicate": True}
    time.sleep(1.5)
    assert len(sink_server.requests) == 2


def said(sink: CaptureServer) -> list[str]:
    return [r.json()["data"]["message"] for r in sink.requests if r.json()["type"] == "wordy.job.message_added"]


def test_with_confirm_a_message_resent_after_a_later_callback_is_one_message_and_repeated_words_are_two(
    start: Callable[[str], Service], sink_server: CaptureServer, platforms: tuple[Wordy, SharedWorkforce]
) -> None:
    wordy, swf = platforms
    service = start(config(sink_server, wordy, swf, "    confirm: true"))
    job = wordy.add_job(status="aer", callback_url=f"{service.base}/hooks/wordy-main/{TOKEN}")
    wordy.add_message(job, "Job claimed by editor.")
    wordy.deliver(job, {"Title": "Edited"})  # aer -> acr
    assert delivered(wordy.outbox) == [202, 202]
    sink_server.wait_for(2)
    resent = wordy.outbox.resend(0)  # Wordy retries the message after the status callback
    assert resent.status == 202  # by arrival order alone a new message: the conversation says otherwise
    wait_until(lambda: "resend_recognised" in service.logs(), what="the resend recognised")
    wordy.add_message(job, "Job claimed by editor.")  # the editor really says it again
    assert delivered(wordy.outbox) == [202]
    sink_server.wait_for(3)
    time.sleep(1)
    assert said(sink_server) == ["Job claimed by editor.", "Job claimed by editor."]
    assert len(sink_server.requests) == 3
    metrics = httpx.get(f"{service.base}/metrics").content
    assert b'workhooks_resends_recognised_total{source="wordy-main"} 1.0' in metrics


def test_dropped_message_callbacks_are_recovered_from_the_conversation_once_each(
    start: Callable[[str], Service],
    sink_server: CaptureServer,
    platforms: tuple[Wordy, SharedWorkforce],
    rdb: redis.Redis,
) -> None:
    wordy, swf = platforms
    job = wordy.add_job(status="aer", callback_url="http://127.0.0.1:9/not-yet")
    wordy.add_message(job, "Before we started", fire=False)  # on the first read: recorded, not announced
    service = start(config(sink_server, wordy, swf, "    reconcile_interval: 1"))
    wordy.jobs[job].callback_url = f"{service.base}/hooks/wordy-main/{TOKEN}"
    service.start_scheduler()
    seen = keys.poll_seen("wordy-main")
    wait_until(lambda: b'"said"' in (rdb.hget(seen, f"job/{job}") or b""), timeout=20, what="a first read")
    wordy.outbox.drop_next()
    wordy.add_message(job, "Your edit is half done.")  # its callback is lost
    assert delivered(wordy.outbox) == []
    recovered = sink_server.wait_for(1, timeout=20)[0].json()
    assert recovered["data"]["message"] == "Your edit is half done." and recovered["data"]["reconciled"] is True
    late = service.wordy(wordy.outbox.dropped[0].body)  # the lost callback turns up after all
    assert late.status_code == 202
    wordy.add_message(job, "Nearly there.")  # delivered by its callback, then read by reconciliation
    wordy.add_message(job, "Nearly there.")  # the same words again: the receiver takes this call for a resend
    assert delivered(wordy.outbox) == [202, 200]
    wait_until(lambda: len(said(sink_server)) >= 3, timeout=20, what="three messages")
    time.sleep(3)  # three more reconciliations
    assert said(sink_server) == ["Your edit is half done.", "Nearly there.", "Nearly there."]
    assert "Before we started" not in str(said(sink_server)) and service.logs().count("resend_recognised") == 2


def test_a_dropped_shared_workforce_callback_is_recovered_by_reconciliation(
    start: Callable[[str], Service],
    sink_server: CaptureServer,
    platforms: tuple[Wordy, SharedWorkforce],
    rdb: redis.Redis,
) -> None:
    wordy, swf = platforms
    swf.complete_task(swf.add_task("Before we started"), ["old"])  # baseline: not announced
    service = start(config(sink_server, wordy, swf))
    service.start_scheduler()
    wait_until(lambda: rdb.exists(keys.poll_baseline("swf")), what="baseline")
    hook = f"{service.base}/hooks/swf"
    swf.complete_task(swf.add_task("Tag photo", hook), ["cat"])
    assert delivered(swf.outbox) == [202]
    first = sink_server.wait_for(1)[0].json()
    assert first["data"]["link"] == f"{swf.url}/tasks/{first['data']['task_id']}"  # the callback's Link header
    lost = swf.add_task("Remove offensive language", hook)
    swf.outbox.drop_next()
    swf.complete_task(lost, ["My name is Dougie."])  # callback lost
    assert delivered(swf.outbox) == []
    recovered = sink_server.wait_for(2, timeout=20)
    assert len(recovered) == 2
    event = recovered[1].json()
    assert (event["type"], event["subject"]) == ("sharedworkforce.task.responses_received", f"task/{lost}")
    assert event["data"]["responses"] == swf.responses[lost]
    late = swf.outbox.dropped[0]  # the callback turns up after all, as the platform sent it
    answer = service.post("/hooks/swf", late.body, late.headers["Content-Type"], **{"x-api-key": SWF_KEY})
    assert answer.status_code == 200 and answer.json()["id"] == event["id"]
    time.sleep(1.5)
    assert len(sink_server.requests) == 2
