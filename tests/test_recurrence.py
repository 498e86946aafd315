"""Every real occurrence is one event, end to end: a Wordy job through two rejection rounds, told by the
document-faithful emulator's own callbacks, through a real receiver, worker and scheduler."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.emulators.wordy import Wordy
from tests.servers import TOKEN, CaptureServer, Service, wait_until

pytestmark = pytest.mark.slow

WORDY_KEY = "wordy-api-key-e8ddc55d"


def config(sink: CaptureServer, wordy: Wordy, extra: str = "") -> str:
    return f"""
sources:
  wordy-main:
    platform: wordy
    token: {TOKEN}
    api_key: {WORDY_KEY}
    base_url: {wordy.url}/api/1.0
{extra}
sinks:
  erp: {{type: webhook, url: "{sink.url}", allow_private: true, retry_intervals: [1]}}
routes: [{{to: [erp]}}]
"""


@pytest.fixture
def wordy() -> Iterator[Wordy]:
    platform = Wordy(WORDY_KEY).start()
    yield platform
    platform.stop()


def customer(wordy: Wordy, job: int, action: str, **form: str) -> None:
    """The customer acts through Wordy's API, as the document shows (Basic auth, the key as password)."""
    answer = httpx.post(f"{wordy.base_url}job/{job}/{action}/", data=form, auth=("me@example.com", WORDY_KEY))
    assert answer.status_code == 200, answer.text


def told(sink: CaptureServer) -> list[tuple[str, str]]:
    """What reached the sink: (type, status or message), in order of delivery."""
    found = []
    for request in sink.requests:
        event = request.json()
        found.append((event["type"].rsplit(".", 1)[1], event["data"].get("status") or event["data"].get("message")))
    return found


def test_a_job_through_two_rejection_rounds_is_told_once_per_real_occurrence(
    start: Callable[[str], Service], sink_server: CaptureServer, wordy: Wordy
) -> None:
    service = start(config(sink_server, wordy))
    job = wordy.add_job(status="acp", callback_url=f"{service.base}/hooks/wordy-main/{TOKEN}")
    expected: list[tuple[str, str]] = []

    def step(do: Callable[[], None], *then: tuple[str, str], resend: bool = False) -> None:
        do()
        sent = wordy.outbox.flush()
        assert [callback.status for callback in sent] == [202] * len(sent)
        if resend:  # Wordy calls twice: the second answer is "duplicate", nothing more is told
            assert wordy.outbox.resend().status == 200
        expected.extend(then)
        sink_server.wait_for(len(expected))
        assert told(sink_server) == expected

    step(lambda: customer(wordy, job, "pay"), ("status_changed", "aer"))
    step(lambda: wordy.add_message(job, "Job claimed by editor."), ("message_added", "Job claimed by editor."))
    step(lambda: wordy.deliver(job, "Edited."), ("status_changed", "acr"), resend=True)
    for round_ in (1, 2):
        complaint = f"I'm unhappy with the edit ({round_})."
        step(lambda c=complaint: customer(wordy, job, "reject", message=c),
             ("message_added", complaint), ("status_changed", "aer"))  # fmt: skip
        step(lambda: wordy.add_message(job, "Job claimed by editor."), ("message_added", "Job claimed by editor."))
        step(lambda: wordy.deliver(job, "Edited again."), ("status_changed", "acr"), resend=True)
    step(lambda: customer(wordy, job, "confirm"), ("status_changed", "c"))
    assert [s for kind, s in told(sink_server) if kind == "status_changed"].count("acr") == 3  # every return told
    assert len({request.headers["webhook-id"] for request in sink_server.requests}) == len(expected)
    shown = service.cli("events", "show", sink_server.requests[-1].headers["webhook-id"])
    assert '"status": "c"' in shown.stdout  # and the job ends complete


def test_with_confirm_and_reconciliation_a_dropped_return_is_told_once_and_its_late_callback_is_a_resend(
    start: Callable[[str], Service], sink_server: CaptureServer, wordy: Wordy
) -> None:
    service = start(config(sink_server, wordy, "    confirm: true\n    reconcile_interval: 1"))
    service.start_scheduler()
    job = wordy.add_job(status="aer", callback_url=f"{service.base}/hooks/wordy-main/{TOKEN}")
    wordy.deliver(job, "Edited.")
    assert [c.status for c in wordy.outbox.flush()] == [202]
    sink_server.wait_for(1)
    customer(wordy, job, "reject", message="Again, please.")
    assert [c.status for c in wordy.outbox.flush()] == [202, 202]  # the complaint, acr -> aer
    sink_server.wait_for(3)
    wordy.outbox.drop_next()
    wordy.deliver(job, "Edited again.")  # its callback is lost: reconciliation finds acr after a poll
    assert wordy.outbox.flush() == []
    wait_until(lambda: len(sink_server.requests) >= 4, timeout=20, what="the lost return recovered")
    recovered = sink_server.requests[3].json()
    assert (recovered["data"]["previous_status"], recovered["data"]["status"]) == ("aer", "acr")
    assert recovered["data"]["reconciled"] is True and "gap" not in recovered["data"]
    late = service.wordy(wordy.outbox.dropped[0].body)  # the lost callback turns up after all
    assert late.status_code == 200 and late.json() == {"id": recovered["id"], "duplicate": True}
    assert [s for kind, s in told(sink_server) if kind == "status_changed"] == ["acr", "aer", "acr"]
