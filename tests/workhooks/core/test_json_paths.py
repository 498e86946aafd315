"""orjson where the receiver reads and writes JSON: the same documents, errors, envelopes and times as before."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workhooks.core.clock import utc_now
from workhooks.core.events import Event, event_id
from workhooks.core.exceptions import ParseError
from workhooks.core.logs import UTCStamper, dumps
from workhooks.core.media import load_json

SAME_AS_JSON = [
    b'{"job_id": 12345678901234567890123, "status": ["acp", "aer"]}',  # past 64 bits: an int, not a float
    b'{"id": -9223372036854775809}',
    b'{"id": 9223372036854775807, "price": 1.5, "tiny": 1e-300, "neg": -0.0}',
    b'\xef\xbb\xbf{"bom": true}',  # orjson refuses a BOM; json reads it
    '{"note": "café ☕ \\u00e9 \\ud83d\\ude00"}'.encode(),
    b'{"a": 1, "a": 2}',
    b' [1, 2, {"x": null}] ',
]


@pytest.mark.parametrize("body", SAME_AS_JSON)
def test_load_json_reads_what_json_reads(body: bytes) -> None:
    got, expected = load_json(body), json.loads(body)
    assert got == expected and json.dumps(got) == json.dumps(expected)  # types too: 1 is not 1.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": 1e400}', "too large to be a finite number"),
        (b'{"a": "\\ud800"}', "lone surrogate"),
        (b'{"a": ', "body is not valid JSON: Expecting value at line 1 column 7"),
        (b"\xff{}", "body is not UTF-8 text"),
    ],
)
def test_load_json_refuses_as_before(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        load_json(body)


def test_an_event_is_written_as_json_wrote_it() -> None:
    data = {"note": 'café\n"quoted"', "big": 2**70, "n": [1, 2.5, None, True]}
    event = Event("evt_1", "wordy-main", "wordy.status", "job/1", "2026-12-01T00:00:00.000Z", data)
    assert json.loads(event.to_bytes()) == json.loads(event.to_json()) == event.to_cloudevent()
    small = Event("evt_1", "wordy-main", "wordy.status", "job/1", "2026-12-01T00:00:00.000Z", {"note": "café"})
    assert small.to_bytes() == json.dumps(small.to_cloudevent(), separators=(",", ":"), ensure_ascii=False).encode()


def test_a_log_line_is_never_lost_to_its_serializer() -> None:
    assert json.loads(dumps({"event": "request", "big": 2**70})) == {"event": "request", "big": 2**70}
    assert json.loads(dumps({"event": "x", "what": object()}, default=repr))["event"] == "x"


def test_times_read_as_datetime_writes_them() -> None:
    before = datetime.now(UTC)
    text = utc_now()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= datetime.fromisoformat(text) <= after
    stamp = UTCStamper()({}, "info", {})["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert abs(datetime.fromisoformat(stamp).timestamp() - time.time()) < 1


def _id_as_released(source: str, *identity: object) -> str:
    """event_id as every release before wrote it: stored events are found again by these ids."""
    material = json.dumps([source, *identity], separators=(",", ":"), sort_keys=True, default=str)
    return "evt_" + hashlib.sha256(material.encode()).hexdigest()[:32]


_PARTS = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="ascii")),
    st.integers(),
    st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, True, False, None, 1.5e16, -0.0]),
    st.lists(st.integers() | st.text(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii")), st.lists(_PARTS, max_size=4))
def test_an_event_id_is_what_every_release_before_gave(source: str, identity: list[object]) -> None:
    assert event_id(source, *identity) == _id_as_released(source, *identity)
