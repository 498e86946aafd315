"""Constant-time credential checks over bytes (headers arrive latin-1 decoded; str compare can raise)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


def _as_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogateescape")


def matches(given: str | bytes | None, expected: Iterable[str]) -> bool:
    """True when ``given`` equals one of ``expected``; every candidate is compared, in constant time."""
    if given is None:
        return False
    candidate = _as_bytes(given)
    found = False
    for secret in expected:
        found |= hmac.compare_digest(candidate, _as_bytes(secret))
    return found
