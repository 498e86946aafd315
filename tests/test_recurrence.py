"""Every real occurrence is one event, end to end: a Wordy job through two rejection rounds, told by the
document-faithful emulator's own callbacks, through a real receiver, worker and scheduler."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
from rq import Queue

from tests.emulators.base import Callback
from tests.emulators.wordy import Wordy
from tests.servers import TOKEN, Captured, CaptureServer, KillableRedis, Service, wait_until
from workhooks.store import keys, quarantine

pytestmark = pytest.mark.slow

WORDY_KEY = "wordy-api-key-e8ddc55d"


def config(sink: CaptureServer, wordy: Wordy, extra: str = "", tail: str = "") -> str:
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
{tail}"""


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
        step(partial(customer, wordy, job, "reject", message=complaint),
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


# ---- the stories of issue #15 that need more than one receiver, an outage, a replay or a restart -------


def hook(service: Service) -> str:
    return f"{service.base}/hooks/wordy-main/{TOKEN}"


class Balancer:
    """A load balancer in front of several receivers: Wordy's callbacks (and its resends, byte for byte)
    go to whichever receiver the test names, and the test sees each answer."""

    def __init__(self, wordy: Wordy) -> None:
        self.wordy = wordy
        self.sent: list[Callback] = []

    def send(self, *receivers: Service) -> list[httpx.Response]:
        """Wordy sends what it owes now; the balancer hands the callbacks to `receivers` in turn."""
        pending = self.wordy.outbox.pending
        answers = []
        for receiver in cycle(receivers):
            if not pending:
                break
            callback = pending.popleft()
            answers.append(self._post(receiver, callback))
            self.sent.append(callback)
        return answers

    def resend(self, receiver: Service, index: int = -1) -> httpx.Response:
        """Wordy calls again with a callback it sent before; this time it lands on `receiver`."""
        return self._post(receiver, self.sent[index])

    @staticmethod
    def _post(receiver: Service, callback: Callback) -> httpx.Response:
        return receiver.post(f"/hooks/wordy-main/{TOKEN}", callback.body, callback.headers["Content-Type"])


def in_sequence(sink: CaptureServer) -> list[tuple[str, str]]:
    """What the sink was told, in the order of the events' CloudEvents `sequence` (one subject)."""
    events = sorted((request.json() for request in sink.requests), key=lambda event: event["sequence"])
    return [(e["type"].rsplit(".", 1)[1], e["data"].get("status") or e["data"].get("message")) for e in events]


def idle(redis_url: str) -> Callable[[], bool]:
    """Nothing queued or running: every accepted event has been processed and delivered."""

    def check() -> bool:
        connection = redis.Redis.from_url(redis_url)
        try:
            queue = Queue(keys.QUEUE, connection=connection)
            return queue.count == 0 and queue.started_job_registry.count == 0 and connection.llen(keys.INBOX) == 0
        finally:
            connection.close()

    return check


def two_receivers_through_a_redis_outage(tmp_path: Path, sink: CaptureServer, wordy: Wordy) -> list[tuple[str, str]]:
    """The two-rejection-rounds story with two receivers (same Redis, a spool folder each, as in
    production) behind a load balancer; Redis is SIGKILLed after the first return and started again
    before the customer confirms. Returns what the customer should have been told, in order."""
    store = KillableRedis(tmp_path / "redis", appendfsync="always")  # stopped and started again mid-story
    spools = {name: tmp_path / f"spool-{name}" for name in ("a", "b")}
    a, b = (
        Service(tmp_path, store.url, config(sink, wordy, tail=f"receiver: {{spool_dir: {spools[name]}}}\n"),
                name=name, worker=name == "a")
        for name in ("a", "b")
    )  # fmt: skip
    balancer = Balancer(wordy)
    try:
        job = wordy.add_job(status="acp", callback_url=hook(a))
        expected: list[tuple[str, str]] = []

        # Redis up: callbacks and a resend spread over both receivers.
        customer(wordy, job, "pay")
        wordy.add_message(job, "Job claimed by editor.")
        wordy.deliver(job, "Edited.")
        assert [answer.status_code for answer in balancer.send(a, b, a)] == [202, 202, 202]
        again = balancer.resend(b)  # Wordy calls twice; the second lands on the other receiver
        assert again.status_code == 200 and again.json()["duplicate"] is True
        expected += [("status_changed", "aer"), ("message_added", "Job claimed by editor."), ("status_changed", "acr")]
        sink.wait_for(len(expected))
        assert told(sink) == expected
        wait_until(idle(store.url), what="everything processed before Redis goes")

        store.kill()  # redis-server SIGKILLed: both receivers spool, each in its own folder
        answers: list[httpx.Response] = []
        for round_, (first, second) in enumerate(((a, b), (b, a)), start=1):
            complaint = f"I'm unhappy with the edit ({round_})."
            customer(wordy, job, "reject", message=complaint)  # the complaint, then acr -> aer
            answers += balancer.send(first, second)
            answers.append(balancer.resend(first))  # acr -> aer again, on the other receiver
            wordy.add_message(job, "Job claimed by editor.")  # a new message, in the same words as before
            wordy.deliver(job, "Edited again.")
            answers += balancer.send(first, second)
            answers += [balancer.resend(first), balancer.resend(second)]  # aer -> acr twice more, both ways
            expected += [("message_added", complaint), ("status_changed", "aer"),
                         ("message_added", "Job claimed by editor."), ("status_changed", "acr")]  # fmt: skip
        assert [answer.status_code for answer in answers] == [202] * 14, [answer.text for answer in answers]
        assert all(answer.json()["id"].startswith("rcpt_") for answer in answers)  # receipts from the spools
        assert len({answer.json()["id"] for answer in answers}) == 14
        ready = [httpx.get(receiver.base + "/readyz").json() for receiver in (a, b)]
        assert [r["status"] for r in ready] == ["degraded", "degraded"], ready
        assert [r["spool_depth"] for r in ready] == [7, 7], ready
        assert len(sink.requests) == 3  # nothing told while Redis is away

        store.restart()
        wait_until(lambda: not any(any(folder.iterdir()) for folder in spools.values()), timeout=30,
                   what="both spools drained")  # fmt: skip
        sink.wait_for(len(expected), timeout=60)
        wait_until(idle(store.url), timeout=30, what="the drained events processed")
        customer(wordy, job, "confirm")
        assert [answer.status_code for answer in balancer.send(b)] == [202]
        expected.append(("status_changed", "c"))
        sink.wait_for(len(expected), timeout=30)
        time.sleep(1)  # anything told twice would have arrived by now
        shown = a.cli("events", "show", sink.requests[-1].headers["webhook-id"])
        assert '"status": "c"' in shown.stdout  # the job ends complete
        return expected
    finally:
        a.stop()
        b.stop()
        store.stop()


def test_two_receivers_through_a_redis_outage_tell_each_real_occurrence_once(
    tmp_path: Path, sink_server: CaptureServer, wordy: Wordy
) -> None:
    expected = two_receivers_through_a_redis_outage(tmp_path, sink_server, wordy)
    assert sorted(told(sink_server)) == sorted(expected)  # each real occurrence once, resends not at all
    assert [s for kind, s in told(sink_server) if kind == "status_changed"].count("acr") == 3  # every return
    assert len({request.headers["webhook-id"] for request in sink_server.requests}) == len(expected)
    assert told(sink_server)[-1] == ("status_changed", "c")
    # told in the order the spools drained, but numbered in the order the callbacks arrived
    assert in_sequence(sink_server) == expected


def quarantined_on_arrival(redis_url: str, callback: Callback) -> str:
    """The receiver of the day could not parse this callback and quarantined it as it arrived.

    No callback Wordy sends fails to parse today, so this stands in for an earlier release's receiver
    (as tests/workhooks/test_cli.py does): the same store call the receiver makes, at the same moment.
    """

    async def put() -> str:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            reason = "stand-in: a receiver release that could not parse it"
            return await quarantine.put(client, "wordy-main", reason, callback.headers["Content-Type"], callback.body)
        finally:
            await client.aclose()

    return asyncio.run(put())


def job_state(service: Service, event_id: str) -> dict[str, Any]:
    """The job's state as `workhooks events show` prints it under the event."""
    shown = service.cli("events", "show", event_id).stdout
    assert "\nstate of " in shown, shown
    state = shown.split("\nstate of ", 1)[1].split(":\n", 1)[1].split("\n\ndeliveries:", 1)[0]
    found: dict[str, Any] = json.loads(state)
    return found


def test_a_quarantined_callback_replayed_after_the_job_moved_on_is_judged_as_of_its_arrival(
    start: Callable[[str], Service], redis_url: str, sink_server: CaptureServer, wordy: Wordy
) -> None:
    service = start(config(sink_server, wordy))
    job = wordy.add_job(status="acp", callback_url=hook(service))
    expected: list[tuple[str, str]] = []

    def quarantine_next(do: Callable[[], None]) -> str:
        wordy.outbox.drop_next()
        do()
        return quarantined_on_arrival(redis_url, wordy.outbox.dropped[-1])

    def live(do: Callable[[], None], *then: tuple[str, str]) -> None:
        do()
        assert [callback.status for callback in wordy.outbox.flush()] == [202] * len(then)
        expected.extend(then)
        sink_server.wait_for(len(expected))
        assert told(sink_server) == expected

    paid = quarantine_next(lambda: customer(wordy, job, "pay"))  # acp -> aer: a real occurrence when it came
    live(lambda: wordy.add_message(job, "Job claimed by editor."), ("message_added", "Job claimed by editor."))
    live(lambda: wordy.deliver(job, "Edited."), ("status_changed", "acr"))
    first_return = sink_server.requests[-1].headers["webhook-id"]
    resent = quarantined_on_arrival(redis_url, wordy.outbox.delivered[-1])  # Wordy calls twice: the copy
    complaint = "I'm unhappy with the edit (1)."
    complained = quarantine_next(lambda: customer(wordy, job, "reject", message=complaint))  # a real message
    assert [callback.status for callback in wordy.outbox.flush()] == [202]  # then acr -> aer, live
    expected.append(("status_changed", "aer"))
    sink_server.wait_for(len(expected))
    live(lambda: wordy.add_message(job, "Job claimed by editor."), ("message_added", "Job claimed by editor."))
    live(lambda: wordy.deliver(job, "Edited again."), ("status_changed", "acr"))
    assert told(sink_server) == expected
    listed = service.cli("quarantine", "list").stdout
    assert all(item in listed for item in (paid, resent, complained)) and "3 quarantined" in listed

    replayed = service.cli("quarantine", "replay")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    lines = dict(line.split(": ", 1) for line in replayed.stdout.splitlines() if line.startswith("q_"))
    assert lines[resent] == f"already accepted as {first_return}"  # a resend of what was current then
    assert lines[paid].startswith("queued as evt_") and lines[complained].startswith("queued as evt_")
    late = {("status_changed", "aer"), ("message_added", complaint)}  # each told once, late
    sink_server.wait_for(len(expected) + 2, timeout=20)
    time.sleep(1)  # anything told twice would have arrived by now
    assert told(sink_server)[: len(expected)] == expected and set(told(sink_server)[len(expected) :]) == late
    by_id = {request.headers["webhook-id"]: request.json() for request in sink_server.requests}
    assert len(by_id) == len(sink_server.requests) == len(expected) + 2
    paid_event = by_id[lines[paid].removeprefix("queued as ")]
    assert (paid_event["data"]["previous_status"], paid_event["data"]["status"]) == ("acp", "aer")
    assert job_state(service, paid_event["id"])["status"] == "acr"  # the job does not go back to aer
    assert "0 quarantined" in service.cli("quarantine", "list").stdout
    expected.extend(told(sink_server)[len(expected) :])

    live(lambda: customer(wordy, job, "confirm"), ("status_changed", "c"))
    assert job_state(service, sink_server.requests[-1].headers["webhook-id"])["status"] == "c"


# A worker SIGKILLed while it runs a job: the job's lease (a drain job: 20 s + 10 s) runs out and the next
# maintenance pass (every second here) hands it to another worker; a job caught between leaving the queue
# and being leased waits out RQ's 60 s (docs/reliability.md, "Recovery bounds"). A poll lock outlives a
# poll killed mid-way by up to 60 s.
RECOVERY = 60 + 2 + 15


def test_worker_killed_and_scheduler_restarted_mid_story_nothing_told_twice_nothing_missed(
    tmp_path: Path, redis_url: str, sink_server: CaptureServer, wordy: Wordy
) -> None:
    held: dict[str, float] = {}

    def hold_the_second_complaint(request: Captured) -> int:
        if "(2)" in str(request.json()["data"].get("message")) and not held:
            held["at"] = time.monotonic()
            time.sleep(2)  # the worker is SIGKILLed while this delivery is in flight
        return 200

    sink_server.status = hold_the_second_complaint
    service = Service(
        tmp_path, redis_url, config(sink_server, wordy, "    confirm: true\n    reconcile_interval: 1"),
        WORKHOOKS_MAINTENANCE_INTERVAL="1",
    )  # fmt: skip
    worker, scheduler = service.workers[0], service.start_scheduler()
    try:
        job = wordy.add_job(status="acp", callback_url=hook(service))
        expected: list[tuple[str, str]] = []

        def callbacks(do: Callable[[], None], *answers: int) -> None:
            do()
            assert [callback.status for callback in wordy.outbox.flush()] == list(answers)

        held_by_killed: set[str] = set()  # leased by a worker when it was killed: perhaps sent, never completed

        def kill_worker() -> None:
            worker.kill()
            client = redis.Redis.from_url(redis_url)  # read before another worker can take them
            for member in client.zrange(keys.outbox_leases("erp"), 0, -1):
                head = client.lindex(keys.outbox_lane("erp", member.decode()), 0)
                held_by_killed.add(head.decode().removesuffix("-erp") if head else "")

        def told_once(timeout: float = 20) -> list[tuple[str, str]]:
            """What the customer was told, one entry per webhook-id (a repeat carries the same id), in the
            order of the events' sequence: a delivery retried after a worker died may arrive after later ones."""
            wait_until(lambda: len({r.headers["webhook-id"] for r in sink_server.requests}) >= len(expected),
                       timeout=timeout, what=f"{len(expected)} events told")  # fmt: skip
            first: dict[str, tuple[str, tuple[str, str]]] = {}
            for request, entry in zip(sink_server.requests, told(sink_server), strict=True):
                first.setdefault(request.headers["webhook-id"], (request.json()["sequence"], entry))
            return [entry for _, entry in sorted(first.values())]

        callbacks(lambda: customer(wordy, job, "pay"), 202)
        callbacks(lambda: wordy.add_message(job, "Job claimed by editor."), 202)
        callbacks(lambda: wordy.deliver(job, "Edited."), 202)
        assert wordy.outbox.resend().status == 200
        expected += [("status_changed", "aer"), ("message_added", "Job claimed by editor."), ("status_changed", "acr")]
        assert told_once() == expected

        # Round 1: the worker is SIGKILLed; the round's callbacks are accepted and wait in the queue.
        kill_worker()
        complaint = "I'm unhappy with the edit (1)."
        callbacks(lambda: customer(wordy, job, "reject", message=complaint), 202, 202)
        callbacks(lambda: wordy.add_message(job, "Job claimed by editor."), 202)
        callbacks(lambda: wordy.deliver(job, "Edited again."), 202)
        assert wordy.outbox.resend().status == 200  # a resend is told from Redis alone, no worker needed
        time.sleep(1)
        assert told_once() == expected  # nothing told while no worker runs
        worker = service.start_worker()
        expected += [("message_added", complaint), ("status_changed", "aer"),
                     ("message_added", "Job claimed by editor."), ("status_changed", "acr")]  # fmt: skip
        assert told_once(timeout=RECOVERY) == expected

        # Round 2: the worker is SIGKILLed while it delivers the complaint; another one takes over.
        complaint = "I'm unhappy with the edit (2)."
        callbacks(lambda: customer(wordy, job, "reject", message=complaint), 202, 202)
        wait_until(lambda: bool(held), what="the complaint's delivery in flight")
        kill_worker()
        worker = service.start_worker()
        expected += [("message_added", complaint), ("status_changed", "aer")]
        assert told_once(timeout=RECOVERY) == expected

        # The scheduler is SIGKILLed; meanwhile the editor's return is lost on its way. A new scheduler
        # starts, and reconciliation finds the return.
        scheduler.kill()
        time.sleep(1.5)  # a poll the old scheduler queued has run by now
        callbacks(lambda: wordy.add_message(job, "Job claimed by editor."), 202)
        wordy.outbox.drop_next()
        callbacks(lambda: wordy.deliver(job, "Edited a third time."))
        expected.append(("message_added", "Job claimed by editor."))
        assert told_once() == expected
        time.sleep(2)
        assert told_once() == expected  # no scheduler, no reconciliation: the return is not known yet
        scheduler = service.start_scheduler()
        expected.append(("status_changed", "acr"))
        assert told_once(timeout=RECOVERY) == expected
        recovered = sink_server.requests[-1].json()
        assert (recovered["data"]["previous_status"], recovered["data"]["status"]) == ("aer", "acr")
        assert recovered["data"]["reconciled"] is True
        late = service.wordy(wordy.outbox.dropped[0].body)  # the lost callback turns up after all
        assert late.status_code == 200 and late.json() == {"id": recovered["id"], "duplicate": True}

        callbacks(lambda: customer(wordy, job, "confirm"), 202)
        expected.append(("status_changed", "c"))
        assert told_once() == expected
        time.sleep(2)  # past a reconciliation poll or two: nothing more is told
        assert told_once() == expected
        assert [s for kind, s in expected if kind == "status_changed"].count("acr") == 3
        sent = Counter(request.headers["webhook-id"] for request in sink_server.requests)
        in_flight = next(r.headers["webhook-id"] for r in sink_server.requests if "(2)" in r.body.decode())
        # Repeated: at most what a killed worker held (the complaint in flight; in round 1, a delivery the sink
        # had answered whose completion the kill cut short), each once more with its webhook-id.
        assert in_flight in held_by_killed
        assert {webhook_id for webhook_id, count in sent.items() if count > 1} <= held_by_killed
        assert sent[in_flight] <= 2  # at most the delivery cut short by the kill again, with its webhook-id

        def listed() -> list[str]:
            found = service.cli("events", "list", "--subject", f"job/{job}", "--limit", "100")
            assert found.returncode == 0
            return found.stdout.splitlines()

        assert len(listed()) == len(expected)
        # The delivery the kill cut short is marked delivered once its job is retried (RQ's lease runs out
        # first): the sink may hear it again, with the same webhook-id, as asserted above.
        wait_until(lambda: all(" delivered " in line for line in listed()), timeout=RECOVERY,
                   what="every event marked delivered")  # fmt: skip
        assert job_state(service, recovered["id"])["status"] == "c"  # the job ends complete
    finally:
        service.stop()
