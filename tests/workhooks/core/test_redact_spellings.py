"""A secret is redacted however the body's encoding spells it (#16: PHP, Rails, XML, percent-encoding)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from workhooks.core.redact import REDACTED, redact_body

KEY = "SWFKEY-SECRET/abc&x<y"


def spelled(secret: str, how: str) -> str:
    if how == "json_unicode":  # every character as \uXXXX
        return "".join(f"\\u{ord(c):04x}" for c in secret)
    if how == "php":
        return secret.replace("/", "\\/")
    if how == "rails":
        return secret.replace("&", "\\u0026").replace("<", "\\u003c").replace("-", "\\u002d")
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["json_unicode", "php", "rails"])
def test_json_escapes_cannot_hide_a_secret(how: str) -> None:
    body = ('{"api_key": "' + spelled(KEY, how) + '", "task": {"id": 7, "note": "caf\\u00e9"}}').encode()
    stored = redact_body(body, "application/json", [KEY])
    assert KEY.encode() not in stored and REDACTED in stored
    document = json.loads(stored)
    assert document["task"] == {"id": 7, "note": "café"} and KEY not in json.dumps(document, ensure_ascii=False)


def test_a_json_body_without_the_secret_is_kept_byte_for_byte() -> None:
    body = b'{"message": "caf\\u00e9 \\/ ok", "job_id": 1}'
    assert redact_body(body, "application/json", [KEY]) == body


def test_partial_percent_encoding_cannot_hide_a_secret() -> None:
    half = "".join(f"%{ord(c):02X}" if i % 2 else c for i, c in enumerate(KEY))
    stored = redact_body(f"api_key={half}&job_id=1".encode(), "application/x-www-form-urlencoded", [KEY])
    assert parse_qs(stored.decode()) == {"api_key": [REDACTED.decode()], "job_id": ["1"]}


def test_xml_character_references_cannot_hide_a_secret() -> None:
    refs = KEY.replace("-", "&#45;").replace("/", "&#x2F;").replace("&", "&amp;").replace("&amp;#", "&#")
    refs = refs.replace("<", "&lt;")
    body = f"<task><api_key>{refs}</api_key><id>7</id></task>".encode()
    stored = redact_body(body, "application/xml", [KEY])
    assert b"SWFKEY" not in stored and b"<id>7</id>" in stored


def test_a_lone_surrogate_in_a_quarantined_body_does_not_stop_redaction() -> None:
    body = ('{"note": "\\ud800", "api_key": "' + spelled(KEY, "json_unicode") + '"}').encode()
    stored = redact_body(body, "application/json", [KEY])
    assert b"SWFKEY" not in stored and json.loads(stored)["note"] == "\ud800"


def test_a_body_that_is_not_json_after_all_has_its_escapes_undone_before_redaction() -> None:
    body = ('{"message": "' + spelled(KEY, "json_unicode") + " and " + spelled(KEY, "php") + '", "job_id": 1').encode()
    stored = redact_body(body, "application/json", [KEY])  # cut short: quarantined, not parsed
    assert b"SWFKEY" not in stored and b"\\u0053" not in stored and stored.count(REDACTED) == 2


@pytest.mark.parametrize("how", ["json_unicode", "php", "rails"])
def test_a_body_parsed_already_is_redacted_as_if_parsed_again(how: str) -> None:
    body = ('{"api_key": "' + spelled(KEY, how) + '", "task": {"id": 7, "note": "caf\\u00e9"}}').encode()
    parsed = json.loads(body)
    assert redact_body(body, "application/json", [KEY], parsed) == redact_body(body, "application/json", [KEY])
