from __future__ import annotations

import pytest

from tests.conftest import fixture_bytes
from workhooks.core.events import Event
from workhooks.core.exceptions import ParseError, UnsupportedMediaTypeError
from workhooks.platforms.wordy import callback as wordy


def test_status_callback_json_as_documented() -> None:
    callback = wordy.parse(fixture_bytes("wordy", "status_acp_aer.json"), "application/json")
    assert callback.type == "wordy.job.status_changed"
    assert callback.subject == "job/123"
    assert callback.data == {
        "job_id": 123,
        "previous_status": "acp",
        "previous_status_label": "awaiting customer payment",
        "status": "aer",
        "status_label": "awaiting editor response",
    }
    assert callback.phase == "in_progress"


def test_form_encoded_status_is_the_same_callback_as_json() -> None:
    as_json = wordy.parse(fixture_bytes("wordy", "status_acp_aer.json"), "application/json")
    as_form = wordy.parse(fixture_bytes("wordy", "status_acp_aer.form"), "application/x-www-form-urlencoded")
    assert as_form == as_json
    assert Event.from_callback("w", as_form).id == Event.from_callback("w", as_json).id


def test_php_style_status_list_and_string_job_id() -> None:
    callback = wordy.parse(b"status[]=aer&status[]=acr&job_id=7", "application/x-www-form-urlencoded; charset=utf-8")
    assert (callback.data["previous_status"], callback.data["status"], callback.data["job_id"]) == ("aer", "acr", 7)
    assert callback.phase == "awaiting_client"


def test_missing_content_type_is_sniffed() -> None:
    assert wordy.parse(b'{"status": ["aer", "c"], "job_id": 1}', None).phase == "completed"
    assert wordy.parse(b"status=awc&status=acp&job_id=1", "").data["status"] == "acp"


def test_message_callback_json_and_form() -> None:
    callback = wordy.parse(fixture_bytes("wordy", "message.json"), "application/json")
    assert callback.type == "wordy.job.message_added"
    assert callback.data == {"job_id": 123, "author": "John D", "message": "Job claimed by editor."}
    assert callback.phase is None  # filled from the job's status by the worker
    form = wordy.parse(fixture_bytes("wordy", "message.form"), "application/x-www-form-urlencoded")
    assert form.data == {"job_id": 234, "author": "Editor X", "message": "I'm working on your job now."}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"status": ["acp", 5], "job_id": 1}', "short text"),
        (b'{"status": ["acp", "%s"], "job_id": 1}' % (b"x" * 33), "short text"),
        (b'{"status": ["acp"], "job_id": 1}', "pair"),
        (b'{"status": ["acp", "aer"]}', "job_id"),
        (b'{"status": ["acp", "aer"], "job_id": "abc"}', "job_id"),
        (b'{"status": ["acp", "aer"], "job_id": true}', "job_id"),
        (b'{"job_id": 1}', "neither"),
        (b'{"message": 5, "job_id": 1}', "message must be text"),
        (b"[1, 2]", "object"),
        (b"{not json", "not valid JSON"),
        (b"{\xc3\x28}", "UTF-8"),
    ],
)
def test_malformed_callbacks_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        wordy.parse(body, "application/json")


def test_other_media_types_are_unsupported() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        wordy.parse(b"<x/>", "application/xml")


def test_a_status_the_document_does_not_name_is_kept_as_sent_and_labelled_unknown() -> None:
    callback = wordy.parse(b'{"status": ["acr", "onhold"], "job_id": 9}', "application/json")
    assert (callback.data["status"], callback.data["status_label"], callback.phase) == ("onhold", "unknown", None)
    assert callback.data["previous_status_label"] == "awaiting customer response"


@pytest.mark.parametrize(
    "job_id",
    ["²", "١٢٣", "9" * 21, "-1", "1.0", 10**20, -1],
    ids=["superscript", "arabic-indic", "21 digits", "negative text", "decimal text", "21-digit int", "negative"],
)
def test_job_ids_are_ascii_digits_of_bounded_length(job_id: object) -> None:
    with pytest.raises(ParseError, match="job_id"):
        wordy.to_callback({"job_id": job_id, "message": "x"})


def test_a_job_id_in_digits_with_spaces_is_read() -> None:
    assert wordy.to_callback({"job_id": " 0042 ", "message": "x"}).data["job_id"] == 42
    assert wordy.to_callback({"job_id": 10**20 - 1, "message": "x"}).subject == f"job/{10**20 - 1}"
