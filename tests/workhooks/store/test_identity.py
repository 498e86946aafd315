"""Every real occurrence is one event: a resend is recognised, a recurrence is a new event (store/ingest.py)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import redis

from workhooks.core.events import Event, event_id
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import keys
from workhooks.store.ingest import Accepted, Ingest, Prepared, claim, prepare, release

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send(rdb: redis.Redis, body: bytes, seconds: float, late: bool = False, kind: str = "application/json") -> Accepted:
    event = Event.from_callback("wordy-main", wordy.parse(body, kind), time=at(seconds))
    return Ingest().submit_sync(rdb, prepare(event, kind, body), late=late)


def status(previous: str, new: str, job: int = 7) -> bytes:
    return json.dumps({"status": [previous, new], "job_id": job}).encode()


def message(words: str, job: int = 7, author: str = "Editor X") -> bytes:
    return json.dumps({"username": author, "message": words, "job_id": job}).encode()


def test_a_rejection_loop_announces_every_return_and_a_resend_is_still_one_event(rdb: redis.Redis) -> None:
    paid = send(rdb, status("acp", "aer"), 0)
    back = send(rdb, status("aer", "acr"), 1)
    resent = send(rdb, status("aer", "acr"), 2)  # Wordy calls twice in a row
    rejected = send(rdb, status("acr", "aer"), 3)  # the customer rejects the edit
    back_again = send(rdb, status("aer", "acr"), 4)  # the editor returns it again: a new occurrence
    resent_again = send(rdb, status("aer", "acr"), 5)
    assert [a.created for a in (paid, back, resent, rejected, back_again, resent_again)] == [
        True, True, False, True, True, False,
    ]  # fmt: skip
    assert resent.id == back.id and resent_again.id == back_again.id and back_again.id != back.id
    assert rdb.llen(keys.INBOX) == 4


def test_a_status_resent_after_a_message_is_still_a_resend(rdb: redis.Redis) -> None:
    first = send(rdb, status("aer", "acr"), 0)
    assert send(rdb, message("Your edit is ready."), 1).created
    assert send(rdb, status("aer", "acr"), 2) == Accepted(False, first.id)


def test_the_same_words_are_one_message_unless_something_happened_between(rdb: redis.Redis) -> None:
    claimed = send(rdb, message("Job claimed by editor."), 0)
    assert send(rdb, message("Job claimed by editor."), 1) == Accepted(False, claimed.id)  # a resend
    assert send(rdb, status("acr", "aer"), 2).created
    again = send(rdb, message("Job claimed by editor."), 3)  # claimed again after a rejection
    assert again.created and again.id != claimed.id
    assert send(rdb, message("Job claimed by editor.", author="Editor Y"), 4).created  # other words (author)


def test_json_and_form_renderings_of_one_callback_are_one_event(rdb: redis.Redis) -> None:
    first = send(rdb, status("acp", "aer"), 0)
    form = send(rdb, b"status=acp&status=aer&job_id=7", 1, kind="application/x-www-form-urlencoded")
    assert form == Accepted(False, first.id)


def test_a_late_arrival_is_judged_by_what_its_subject_showed_when_it_arrived(rdb: redis.Redis) -> None:
    back = send(rdb, status("aer", "acr"), 10)
    send(rdb, status("acr", "aer"), 20)  # rejected: the lane moved on
    # A resend that reached a receiver at 15 s, while Redis was away, drained now: still the first one's.
    assert send(rdb, status("aer", "acr"), 15, late=True) == Accepted(False, back.id)
    # The editor's second return, spooled at 30 s: a new occurrence, and now the job's status.
    second = send(rdb, status("aer", "acr"), 30, late=True)
    assert second.created and second.id != back.id
    assert send(rdb, status("aer", "acr"), 31) == Accepted(False, second.id)


def test_a_late_arrival_older_than_the_lanes_value_does_not_move_it_back(rdb: redis.Redis) -> None:
    send(rdb, status("acp", "aer"), 10)
    current = send(rdb, status("aer", "acr"), 20)
    old = send(rdb, status("awc", "acp"), 5, late=True)  # spooled before both: new, but not the current value
    assert old.created
    assert send(rdb, status("aer", "acr"), 21) == Accepted(False, current.id)


def test_an_id_the_release_before_stored_is_still_recognised_as_a_resend(rdb: redis.Redis) -> None:
    legacy = event_id("wordy-main", wordy.STATUS_CHANGED, 7, "aer", "acr")  # that release's formula
    rdb.set(keys.event(legacy), "{}")
    assert send(rdb, status("aer", "acr"), 0) == Accepted(False, legacy)
    assert send(rdb, status("acr", "aer"), 1).created  # what follows is new
    assert send(rdb, status("aer", "acr"), 2).created  # and a second return is not taken for the old one


def test_every_event_of_a_subject_carries_a_sequence_in_the_order_it_was_accepted(rdb: redis.Redis) -> None:
    ids = [send(rdb, body, n).id for n, body in enumerate([status("acp", "aer"), message("hi"), status("aer", "acr")])]
    sequences = [json.loads(rdb.get(keys.event(i)) or b"{}")["sequence"] for i in ids]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3
    assert sequences[0] == f"{int(T0.timestamp() * 1000):016d}0001" and min(sequences) > f"{2**40:016d}"  # 1.0's
    assert all(json.loads(rdb.get(keys.event(i)) or b"{}")["id"] == i for i in ids)


def test_a_late_arrival_sorts_by_when_it_arrived_not_when_it_was_drained(rdb: redis.Redis) -> None:
    live = send(rdb, status("aer", "acr"), 10)  # receiver 2 took this live
    drained = send(rdb, status("acp", "aer"), 5, late=True)  # receiver 1 spooled this earlier, drains now
    sequence = {i: json.loads(rdb.get(keys.event(i)) or b"{}")["sequence"] for i in (live.id, drained.id)}
    assert sequence[drained.id] < sequence[live.id]


def test_a_refused_callback_gives_its_lane_back_only_if_nothing_replaced_it(rdb: redis.Redis) -> None:
    back = send(rdb, status("aer", "acr"), 0)
    forged = send(rdb, status("acr", "c"), 1)  # confirm finds the job still in acr
    assert release(rdb, "wordy-main", "job/7", forged.id) == 1
    assert send(rdb, status("aer", "acr"), 2) == Accepted(False, back.id)  # acr again: its resend, as before
    rejected = send(rdb, status("acr", "aer"), 3)
    assert release(rdb, "wordy-main", "job/7", forged.id) == 0  # long replaced: nothing to give back
    assert send(rdb, status("acr", "aer"), 4) == Accepted(False, rejected.id)


def test_two_refused_callbacks_in_a_row_never_give_back_one_anothers_value(rdb: redis.Redis) -> None:
    back = send(rdb, status("aer", "acr"), 0)
    first = send(rdb, status("acr", "c"), 1)  # two forged callbacks, refused in the order they came
    second = send(rdb, status("c", "aer"), 2)
    assert release(rdb, "wordy-main", "job/7", first.id) == 0  # the lane holds the second
    assert release(rdb, "wordy-main", "job/7", second.id) == 1
    assert send(rdb, status("aer", "acr"), 3) == Accepted(False, back.id)  # back to acr, not to the refused c
    assert all(first.id.encode() not in entry for entry in rdb.lrange(keys.ring("wordy-main", "job/7"), 0, -1))


def test_a_late_message_does_not_become_the_subjects_last_word(rdb: redis.Redis) -> None:
    assert send(rdb, status("acr", "c"), 20).created
    assert send(rdb, message("ok"), 10, late=True).created  # spooled at 10, drained after the 20 s status
    again = send(rdb, message("ok"), 30)  # the same words after the status: a new message
    assert again.created


def test_a_late_first_observation_is_not_taken_for_a_later_one(rdb: redis.Redis) -> None:
    send(rdb, status("acp", "aer"), 10)
    later = send(rdb, status("aer", "acr"), 30)
    early = send(rdb, status("acp", "acr"), 5, late=True)  # before anything was known: its own occurrence
    assert early.created and early.id != later.id


def test_a_spooled_copy_of_what_another_receiver_took_live_is_the_same_event(rdb: redis.Redis) -> None:
    send(rdb, status("acp", "aer"), 0)
    live = send(rdb, status("aer", "acr"), 6)  # receiver 2, at once
    assert send(rdb, status("aer", "acr"), 5, late=True) == Accepted(False, live.id)  # receiver 1's spool


def test_a_message_the_release_before_stored_is_a_resend_once_and_new_after_a_change(rdb: redis.Redis) -> None:
    legacy = event_id("wordy-main", wordy.MESSAGE_ADDED, 7, "Editor X", "Job claimed by editor.")
    rdb.set(keys.event(legacy), "{}")
    assert send(rdb, message("Job claimed by editor."), 0) == Accepted(False, legacy)
    assert send(rdb, message("Job claimed by editor."), 1) == Accepted(False, legacy)  # and again
    assert send(rdb, status("acr", "aer"), 2).created
    assert send(rdb, message("Job claimed by editor."), 3).created


def test_each_platform_record_is_announced_by_one_event_and_a_run_again_keeps_its_claim(rdb: redis.Redis) -> None:
    records = ["1333150970:abc:1", "1333150970:abc:2"]  # the editor's same words twice
    assert claim(rdb, "wordy-main", "job/7", "evt_a", records) == "evt_a"
    assert claim(rdb, "wordy-main", "job/7", "evt_b", records) == "evt_b"  # the second entry
    assert claim(rdb, "wordy-main", "job/7", "evt_a", records) == "evt_a"  # processed again after a crash
    assert claim(rdb, "wordy-main", "job/7", "evt_c", records) == "evt_b"  # both announced: a resend
    assert claim(rdb, "wordy-main", "job/7", "evt_d", records[:1]) == "evt_a"
    assert 0 < rdb.ttl(keys.claims("wordy-main", "job/7")) <= keys.STATE_TTL


def previous_release_line(body: bytes, seconds: float, kind: str = "application/json") -> tuple[bytes, str]:
    """A spool line as the release before observations wrote it: the content id, no sequence, five fields."""
    callback = wordy.parse(body, kind)
    old_id = event_id("wordy-main", callback.type, *callback.identity)
    envelope = {"specversion": "1.0", "id": old_id, "source": "/sources/wordy-main", "type": callback.type,
                "subject": callback.subject, "time": at(seconds), "datacontenttype": "application/json",
                "phase": callback.phase, "data": callback.data}  # fmt: skip
    record = {"id": old_id, "event": json.dumps(envelope), "content_type": kind,
              "body": base64.b64encode(body).decode(), "received_at": at(seconds)}  # fmt: skip
    return json.dumps(record).encode() + b"\n", old_id


def test_a_spool_the_release_before_wrote_drains_under_the_identity_rule(rdb: redis.Redis) -> None:
    ingest = Ingest()
    send(rdb, status("acp", "aer"), 0)
    first_return, old_id = previous_release_line(status("aer", "acr"), 1)
    rejected, _ = previous_release_line(status("acr", "aer"), 2)
    second_return, _ = previous_release_line(status("aer", "acr"), 3)  # the old formula: the same id as the first
    drained = [ingest.submit_sync(rdb, Prepared.from_line(line), late=True) for line in (first_return, rejected,
                                                                                         second_return)]  # fmt: skip
    assert [accepted.created for accepted in drained] == [True, True, True]  # the second return is told
    assert len({accepted.id for accepted in drained}) == 3 and old_id not in {accepted.id for accepted in drained}
    stored = Event.from_json(rdb.get(keys.event(drained[0].id)) or b"")
    assert stored.sequence is not None and stored.data["status"] == "acr"
    assert rdb.hget(keys.raw(drained[0].id), "receipt") == old_id.encode()  # what that release answered
    assert send(rdb, status("aer", "acr"), 4) == Accepted(False, drained[2].id)  # Wordy calls again: a resend
