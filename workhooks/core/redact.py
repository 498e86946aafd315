r"""Remove credentials from bodies before anything is stored, in every encoding a sender might use.

``redact`` replaces each secret's spellings (plain, JSON-escaped, percent-encoded, XML-escaped) in
bytes. ``redact_body`` first reads what a body says where an encoding can spell a secret in more
ways than those (JSON escapes such as ``\u002d`` or PHP's ``\/``, partial percent-encoding, XML
character references): when the decoded body holds a secret, what is stored is the redacted
re-encoding of the decoded body, not the raw bytes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode
from xml.sax.saxutils import escape

from workhooks.core.media import MAX_FORM_FIELDS, media_type

REDACTED = b"[REDACTED]"


@functools.lru_cache(maxsize=1024)
def _spellings(secret: str) -> tuple[bytes, ...]:
    """Every encoding of a secret a body may carry, longest first (computed once per secret)."""
    found = {
        secret.encode(),
        json.dumps(secret)[1:-1].encode(),
        json.dumps(secret, ensure_ascii=False)[1:-1].encode(),
        quote_plus(secret).encode(),
        quote(secret, safe="").encode(),
        escape(secret, {'"': "&quot;"}).encode(),
    }
    return tuple(sorted(found, key=len, reverse=True))


def redact(body: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        if not secret:
            continue
        for spelling in _spellings(secret):
            body = body.replace(spelling, REDACTED)  # no ``in`` test first: on 3.11 it costs more than this
    return body


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``redact`` for text a person or a platform wrote (an action's reason, a platform's answer)."""
    return redact(text.encode("utf-8", "surrogatepass"), secrets).decode("utf-8", "replace")


_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,6})|([0-9]{1,7}));")
_MARKUP = frozenset("<>&\"'")


def _char(match: re.Match[bytes]) -> bytes:
    hexadecimal, decimal = match.groups()
    code = int(hexadecimal, 16) if hexadecimal else int(decimal)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or chr(code) in _MARKUP or code < 0x20:
        return match.group(0)  # markup, controls and non-characters keep their reference: still well-formed
    return chr(code).encode()


_JSON_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|(/))")


def _unescaped(match: re.Match[bytes]) -> bytes:
    """One JSON escape in a body that is not JSON: ``\\/`` and printable ASCII ``\\uXXXX`` read as the
    character, unless it is one JSON must escape (a quote, a backslash); anything else stays as it was."""
    if match.group(2):
        return b"/"
    code = int(match.group(1), 16)
    return bytes([code]) if 0x20 <= code < 0x7F and code not in (0x22, 0x5C) else match.group(0)


def _json_text(document: object) -> bytes:
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, as the sender had it
        return json.dumps(document, separators=(",", ":")).encode()


def _decoded(body: bytes, kind: str, document: object = None) -> bytes | None:
    """The body re-encoded from what it says, where its encoding allows other spellings; else None."""
    if (kind.endswith("json") or body.lstrip()[:1] in (b"{", b"[")) and b"\\" in body:
        if document is not None and kind.endswith("json"):
            return _json_text(document)  # what the receiver parsed already: not parsed again
        try:
            return _json_text(json.loads(body))
        except (ValueError, RecursionError):  # not JSON after all (quarantined): undo the escapes one by one
            return _JSON_ESCAPE.sub(_unescaped, body)
    if kind == "application/x-www-form-urlencoded" and b"%" in body:
        try:
            return urlencode(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)).encode()
        except (ValueError, UnicodeDecodeError):
            return None
    if "xml" in kind and b"&#" in body:
        return _CHAR_REF.sub(_char, body)
    return None


def redact_body(body: bytes, content_type: str | None, secrets: Iterable[str], document: object = None) -> bytes:
    """``body`` without any of ``secrets``, however its encoding spelled them (module docstring).

    ``document``: what the body says, when the caller has parsed it as JSON already (a JSON content
    type), so a body with escapes in it is not parsed a second time."""
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        return body
    decoded = _decoded(body, media_type(content_type), document)
    if decoded is not None and any(spelling in decoded for secret in secrets for spelling in _spellings(secret)):
        body = decoded  # a secret the raw bytes spelled otherwise: keep the decoded form, redacted
    return redact(body, secrets)
