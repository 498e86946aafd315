"""Property-based: whatever bytes, headers and content types arrive, parsers and verifiers raise only our errors."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workhooks.core.auth import matches
from workhooks.core.events import Event
from workhooks.core.exceptions import CallbackError
from workhooks.core.redact import REDACTED, redact
from workhooks.platforms.sharedworkforce import callback as sharedworkforce
from workhooks.platforms.wordy import callback as wordy

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "",
        "application/json",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded",
        "application/vnd.com.sharedworkforce.text+json",
        "application/vnd.com.sharedworkforce.text+xml",
        "application/xml",
        "text/xml",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json;;;",
    ]
) | st.text(max_size=40)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
WORDY_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "status": st.lists(st.sampled_from(["awc", "acp", "aer", "acr", "c", "x", ""]) | JSON_VALUES, max_size=3),
        "job_id": st.integers() | st.text(max_size=6) | JSON_VALUES,
        "username": JSON_VALUES,
        "message": JSON_VALUES,
    },
)
TASK_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers() | st.text(max_size=6) | JSON_VALUES,
        "title": JSON_VALUES,
        "name": JSON_VALUES,
        "responses": st.lists(
            st.fixed_dictionaries({}, optional={"answer": JSON_VALUES, "id": JSON_VALUES, "username": JSON_VALUES})
            | JSON_VALUES,
            max_size=3,
        )
        | JSON_VALUES,
        "callback_params": JSON_VALUES,
    },
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_our_errors(parse: object, body: bytes, content_type: str | None) -> None:
    try:
        callback = parse(body, content_type)  # type: ignore[operator]
    except CallbackError:
        return
    Event.from_callback("s", callback).to_json()  # whatever parses also serializes


@FAST
@given(st.binary(max_size=300), CONTENT_TYPES)
def test_wordy_arbitrary_bytes(body: bytes, content_type: str | None) -> None:
    _only_our_errors(wordy.parse, body, content_type)


@FAST
@given(st.binary(max_size=300), CONTENT_TYPES)
def test_sharedworkforce_arbitrary_bytes(body: bytes, content_type: str | None) -> None:
    _only_our_errors(sharedworkforce.parse, body, content_type)


@FAST
@given(WORDY_LIKE)
def test_wordy_structured_json(document: dict[str, object]) -> None:
    _only_our_errors(wordy.parse, json.dumps(document).encode(), "application/json")


@FAST
@given(TASK_LIKE, st.booleans(), JSON_VALUES)
def test_sharedworkforce_structured_json(task: dict[str, object], wrapped: bool, key: object) -> None:
    document = {"task": task, "api_key": key} if wrapped else {**task, "api_key": key}
    body = json.dumps(document).encode()
    _only_our_errors(sharedworkforce.parse, body, "application/json")
    with contextlib.suppress(CallbackError):
        sharedworkforce.api_key(sharedworkforce.decode(body, "application/json"))


@FAST
@given(
    st.recursive(
        st.text(alphabet="abc<>&/ \"'=", max_size=10),
        lambda inner: st.builds(
            lambda tag, body: f"<{tag}>{body}</{tag}>",
            st.sampled_from(["task", "id", "responses", "response", "answer", "a"]),
            inner,
        ),
        max_leaves=15,
    )
)
def test_sharedworkforce_xml_fragments(text: str) -> None:
    _only_our_errors(sharedworkforce.parse, text.encode(), "application/xml")


@FAST
@given(st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=40)), st.lists(st.text(max_size=20), max_size=3))
def test_credential_check_never_raises(given_value: str | bytes | None, expected: list[str]) -> None:
    assert matches(given_value, expected) == (
        given_value is not None
        and any(
            (given_value if isinstance(given_value, bytes) else given_value.encode("utf-8", "surrogateescape"))
            == secret.encode("utf-8", "surrogateescape")
            for secret in expected
        )
    )


@FAST
@given(st.text(min_size=4, max_size=30), st.text(max_size=40), st.text(max_size=40))
def test_redaction_removes_the_secret_from_json_and_forms(secret: str, before: str, after: str) -> None:
    body = json.dumps({"a": before, "api_key": secret, "b": after}).encode()
    assert secret.encode() not in redact(body, [secret]) or secret.encode() in json.dumps(before + after).encode()
    assert REDACTED in redact(body, [secret])
