from __future__ import annotations

from workhooks.core.auth import matches
from workhooks.core.redact import REDACTED, redact


def test_matches_any_current_secret() -> None:
    assert matches("b", ["a", "b"])
    assert not matches("c", ["a", "b"])
    assert not matches(None, ["a"])


def test_non_ascii_input_is_a_mismatch_not_an_error() -> None:
    assert not matches("cl\u00e9", ["key"])
    assert not matches("\udcff", ["key"])
    assert not matches(b"\xff\xfe", ["key"])


def test_redaction_covers_json_form_and_xml_spellings() -> None:
    secret = 'k&"y+/é'
    bodies = [
        b'{"api_key": "k&\\"y+/\\u00e9"}',
        b"api_key=k%26%22y%2B%2F%C3%A9",
        "<api-key>k&amp;&quot;y+/é</api-key>".encode(),
        secret.encode(),
    ]
    for body in bodies:
        assert REDACTED in redact(body, [secret]), body
