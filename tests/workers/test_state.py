from __future__ import annotations

import dataclasses
import itertools
from random import Random

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.state import State, apply, phase_of
from workhooks.core.events import Event
from workhooks.platforms.sharedworkforce import callback as sharedworkforce
from workhooks.platforms.wordy import callback as wordy


def identified(event: Event) -> Event:
    """As ingest would store it: these tests apply events without ingest, so by their content id."""
    return dataclasses.replace(event, id=event.content_id)


def status(previous: str, new: str, job: int = 123) -> Event:
    body = f'{{"status": ["{previous}", "{new}"], "job_id": {job}}}'.encode()
    return identified(Event.from_callback("wordy-main", wordy.parse(body, "application/json")))


def run(events: list[Event]) -> State:
    state: State | None = None
    for event in events:
        state = apply(state, event)
    assert state is not None
    return state


LIFE = [status("awc", "acp"), status("acp", "aer"), status("aer", "acr"), status("acr", "c")]


def test_in_order_walks_the_lifecycle() -> None:
    state = run(LIFE)
    assert state["status"] == "c"
    assert [(h["from"], h["to"], h["applied"]) for h in state["history"]] == [
        ("awc", "acp", True),
        ("acp", "aer", True),
        ("aer", "acr", True),
        ("acr", "c", True),
    ]


def test_any_arrival_order_ends_in_the_same_status() -> None:
    for order in itertools.permutations(LIFE):
        assert run(list(order))["status"] == "c", order


def test_a_late_status_never_moves_the_job_backwards() -> None:
    state = run([status("aer", "acr"), status("acp", "aer")])
    assert state["status"] == "acr"
    assert state["history"][-1] == {**state["history"][-1], "from": "acp", "to": "aer", "applied": False}


def test_rejected_edit_goes_back_to_the_editor() -> None:
    state = run([status("acp", "aer"), status("aer", "acr"), status("acr", "aer")])
    assert state["status"] == "aer"


def test_the_same_event_twice_changes_nothing() -> None:
    once = run([LIFE[0], LIFE[1]])
    twice = run([LIFE[0], LIFE[1], LIFE[1], LIFE[0]])
    assert once == twice


def test_messages_are_kept_and_take_the_jobs_phase() -> None:
    message = identified(
        Event.from_callback("wordy-main", wordy.parse(b'{"username": "E", "message": "hi", "job_id": 123}', None))
    )
    state = run([LIFE[0], LIFE[1], message])
    assert state["messages"] == [{"event_id": message.id, "author": "E", "message": "hi", "at": message.time}]
    assert phase_of(state, message) == "in_progress"
    assert phase_of(run([LIFE[0], message]), message) == "awaiting_client"


def test_task_responses_accumulate_without_duplicates() -> None:
    first = Event.from_callback(
        "swf",
        sharedworkforce.parse(b'{"task": {"id": 5, "title": "T", "responses": [{"answer": "a", "id": "1"}]}}', None),
    )
    more = Event.from_callback(
        "swf",
        sharedworkforce.parse(
            b'{"task": {"id": 5, "responses": [{"answer": "a", "id": "1"}, {"answer": "b", "id": "2"}]}}', None
        ),
    )
    state = run([first, more])
    assert state["responses"] == [{"answer": "a", "id": "1"}, {"answer": "b", "id": "2"}]
    assert state["title"] == "T"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(LIFE))), min_size=len(LIFE), max_size=12).filter(
        lambda picks: set(picks) == set(range(len(LIFE)))
    ),
    st.randoms(),
)
def test_any_interleaving_with_duplicates_ends_as_in_order(picks: list[int], rng: Random) -> None:
    """Every transition arrives at least once, in any order, some twice: same status, same transitions."""
    arrivals = [LIFE[index] for index in picks]
    rng.shuffle(arrivals)
    in_order, shuffled = run(LIFE), run(arrivals)
    assert shuffled["status"] == in_order["status"]
    assert sorted((h["from"], h["to"]) for h in shuffled["history"]) == sorted(
        (h["from"], h["to"]) for h in in_order["history"]
    )
    assert len(shuffled["events"]) == len(LIFE)  # each distinct event applied once


def test_a_busy_subjects_state_keeps_its_newest_entries_and_still_applies_each_event_once(rdb: redis.Redis) -> None:
    from workers import state as states
    from workhooks.store import keys

    events = [
        Event(f"evt_{n:032x}", "wordy-main", "wordy.job.message_added", "job/1", "2026-12-01T00:00:00.000Z",
              {"job_id": 1, "author": "Editor", "message": f"message {n}"})
        for n in range(states.KEPT + 50)
    ]  # fmt: skip

    def mark(pipe: object, final: Event) -> None:
        pipe.hset(keys.raw(final.id), states.PROCESSED_AT, "now")  # type: ignore[attr-defined]

    for event in events:
        assert states.apply_event(rdb, event, mark)[1]
    kept = states.load(rdb, "wordy-main", "job/1")
    assert kept is not None and len(kept["messages"]) == len(kept["events"]) == states.KEPT
    assert kept["messages"][-1]["message"] == f"message {states.KEPT + 49}"
    assert states.apply_event(rdb, events[0], mark)[1] is False  # long out of the list: its mark says applied
