"""Wordy's conversation as reconciliation reads it: entry keys, first reads, new messages, turns."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from workhooks.config.schema import Source
from workhooks.core.events import Event
from workhooks.platforms.wordy import api
from workhooks.platforms.wordy.settings import WordySettings
from workhooks.platforms.wordy.statuses import MESSAGE_ADDED, STATUS_CHANGED

TALK = [  # the document's sample, and the editor saying the same words twice in one second
    {"user": "John D", "created": 1331420408, "message": "First post!"},
    {"user": "Editor X", "created": 1333150970, "message": "I'm working on your job now."},
    {"user": "Editor X", "created": 1333150970, "message": "I'm working on your job now."},
]


def settings(**extra: Any) -> WordySettings:
    found = TypeAdapter(Source).validate_python(
        {"platform": "wordy", "token": "t" * 24, "api_key": "k" * 24, "base_url": "http://127.0.0.1:9/api/1.0", **extra}
    )
    assert isinstance(found, WordySettings)
    return found


def test_identical_messages_in_one_second_have_their_own_keys_and_keys_do_not_move_as_the_talk_grows() -> None:
    keys = [key for key, _ in api.entries(TALK)]
    assert len(set(keys)) == 3 and keys[1].endswith(":1") and keys[2].endswith(":2")
    grown = [key for key, _ in api.entries([*TALK, {"user": "John D", "created": 1333150999, "message": "Thanks"}])]
    assert grown[:3] == keys


def test_a_first_read_of_a_conversation_records_it_and_announces_nothing() -> None:
    before = {"status": "aer"}  # what the release before kept, or a job never read
    item = {"id": 234, "status": "aer", "conversation": TALK}
    assert api.changes(before, item) == []
    assert api.snapshot(item)["said"] == [key for key, _ in api.entries(TALK)]


def test_messages_new_since_the_last_read_are_announced_with_their_entry_and_nothing_else() -> None:
    before = api.snapshot({"id": 234, "status": "aer", "conversation": TALK[:2]})
    found = api.changes(before, {"id": 234, "status": "acr", "conversation": TALK})
    assert [callback.type for callback in found] == [STATUS_CHANGED, MESSAGE_ADDED]
    message = found[1]
    assert message.data["author"] == "Editor X" and message.data["reconciled"] is True
    assert message.data["entry"] == api.entries(TALK)[2][0] and message.observation is None  # content identity


def test_a_conversation_not_read_this_poll_keeps_what_the_last_read_saw() -> None:
    before = api.snapshot({"id": 234, "status": "aer", "conversation": TALK})
    now = api.carry(before, api.snapshot({"id": 234, "status": "acr"}))
    assert now == {"status": "acr", "said": before["said"]}
    assert api.changes(before, {"id": 234, "status": "acr"})[0].type == STATUS_CHANGED  # and no message


def test_a_reconciled_message_names_its_entry_and_a_source_without_the_api_asks_nothing() -> None:
    event = Event("evt_1", "wordy-main", MESSAGE_ADDED, "job/234", "2026-12-01T00:00:00Z",
                  {"job_id": 234, "entry": "1333150970:abc:1"})  # fmt: skip
    assert api.occurrences(settings(reconcile_interval=60), event) == ["1333150970:abc:1"]  # no request made
    assert api.occurrences(settings(), event) is None  # neither confirm nor reconcile: order of arrival decides
