"""Remove credentials from bodies before anything is stored, in every encoding a sender might use."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

REDACTED = b"[REDACTED]"


def _spellings(secret: str) -> set[bytes]:
    return {
        secret.encode(),
        json.dumps(secret)[1:-1].encode(),
        json.dumps(secret, ensure_ascii=False)[1:-1].encode(),
        quote_plus(secret).encode(),
        quote(secret, safe="").encode(),
        escape(secret, {'"': "&quot;"}).encode(),
    }


def redact(body: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        if not secret:
            continue
        for spelling in sorted(_spellings(secret), key=len, reverse=True):
            body = body.replace(spelling, REDACTED)
    return body
