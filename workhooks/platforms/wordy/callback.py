"""Wordy (wordy.com API 1.0) callbacks: job status changes and new messages.

Wordy's documents show JSON bodies but do not name an encoding, so a form-encoded body
(``status=acp&status=aer&job_id=123``) is read too.
"""

from __future__ import annotations

from typing import Any

from workhooks.core.events import Callback, Observation, digest
from workhooks.core.exceptions import ParseError, UnsupportedMediaTypeError
from workhooks.core.media import MAX_ID_DIGITS, ascii_integer, load_form, load_json, media_type
from workhooks.platforms.wordy.statuses import MESSAGE_ADDED, STATUS_CHANGED, STATUS_LABELS, STATUS_PHASES, UNKNOWN

MAX_STATUS = 32
JSON_TYPES = {"application/json", "text/json"}
FORM_TYPE = "application/x-www-form-urlencoded"
_JOB_ID = {"type": "integer", "minimum": 0}
BODY_SCHEMAS: dict[str, dict[str, Any]] = {  # for the OpenAPI document
    "application/json": {
        "oneOf": [
            {
                "type": "object",
                "required": ["status", "job_id"],
                "properties": {
                    "status": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": MAX_STATUS, "examples": list(STATUS_LABELS)},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                    "job_id": _JOB_ID,
                },
            },
            {
                "type": "object",
                "required": ["message", "job_id"],
                "properties": {
                    "username": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                    "job_id": _JOB_ID,
                },
            },
        ]
    },
    FORM_TYPE: {"type": "object"},
}


def decode(body: bytes, content_type: str | None) -> dict[str, Any]:
    kind = media_type(content_type)
    if kind == "":  # undocumented encoding: sniff
        kind = "application/json" if body.lstrip()[:1] in (b"{", b"[") else FORM_TYPE
    if kind in JSON_TYPES or kind.endswith("+json"):
        document = load_json(body)
        if not isinstance(document, dict):
            raise ParseError("JSON body must be an object")
        return document
    if kind == FORM_TYPE:
        form = load_form(body)
        decoded: dict[str, Any] = {}
        for key, values in form.items():
            name = key.removesuffix("[]")
            decoded[name] = values if name == "status" else values[-1]
        return decoded
    raise UnsupportedMediaTypeError(f"Wordy callbacks are JSON or form-encoded, not {kind!r}")


def _job_id(document: dict[str, Any]) -> int:
    """A whole number, or its ASCII digits (forms carry text); at most MAX_ID_DIGITS of them."""
    value = document.get("job_id")
    if isinstance(value, bool):
        raise ParseError("job_id must be a number")
    if isinstance(value, str):
        value = ascii_integer(value)
    if not isinstance(value, int) or not 0 <= value < 10**MAX_ID_DIGITS:
        raise ParseError(f"job_id is missing or not a whole number of at most {MAX_ID_DIGITS} digits")
    return value


def _status(code: Any) -> str:
    """A status as sent. One the document does not name is kept as it is (labelled "unknown"):
    a platform that adds a status must not have its callbacks quarantined or mapped to another."""
    if not isinstance(code, str) or not 0 < len(code) <= MAX_STATUS or not code.isprintable():
        raise ParseError(f"a Wordy status is a short text, not {str(code)[:20]!r} (known: {', '.join(STATUS_LABELS)})")
    return code


def parse(body: bytes, content_type: str | None) -> Callback:
    return to_callback(decode(body, content_type))


def to_callback(document: dict[str, Any]) -> Callback:
    job_id = _job_id(document)
    subject = f"job/{job_id}"
    if "status" in document:
        statuses = document["status"]
        if not isinstance(statuses, list) or len(statuses) != 2:
            raise ParseError("status must be a pair [previous, new]")
        previous, current = _status(statuses[0]), _status(statuses[1])
        return Callback(
            type=STATUS_CHANGED,
            subject=subject,
            data={
                "job_id": job_id,
                "previous_status": previous,
                "previous_status_label": STATUS_LABELS.get(previous, UNKNOWN),
                "status": current,
                "status_label": STATUS_LABELS.get(current, UNKNOWN),
            },
            identity=(job_id, previous, current),
            phase=STATUS_PHASES.get(current),
            observation=Observation("status", current),  # the job entered `current`
        )
    if "message" in document:
        author, message = document.get("username"), document["message"]
        if not isinstance(message, str):
            raise ParseError("message must be text")
        if author is not None and not isinstance(author, str):
            raise ParseError("username must be text")
        return Callback(
            type=MESSAGE_ADDED,
            subject=subject,
            data={"job_id": job_id, "author": author, "message": message},
            identity=(job_id, author, message),
            observation=Observation("messages", digest(author, message), "says"),
        )
    raise ParseError("neither a status callback (status) nor a message callback (message)")
