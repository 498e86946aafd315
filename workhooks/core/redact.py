"""Remove credentials from bodies before anything is stored, in every encoding a sender might use."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

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
            if spelling in body:
                body = body.replace(spelling, REDACTED)
    return body
