"""Times as workhooks stores them: ISO 8601 in UTC with milliseconds and a Z."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text: one strftime a second


def utc_now() -> str:
    """Now, as ``2026-12-01T15:39:44.111Z`` (what ``datetime.now(UTC).isoformat(timespec="milliseconds")``
    gives, with Z), from the clock once per call and strftime once per second: it is on every callback's path."""
    global _second
    now = time.time()
    second, text = _second
    if int(now) != second:
        second = int(now)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return f"{text}.{int((now - second) * 1000):03d}Z"


def seconds_since(iso_time: str | bytes | None, now: datetime | None = None) -> float | None:
    """How long ago an ISO time was (never negative); None for a missing or unreadable one."""
    if not iso_time:
        return None
    text = iso_time.decode() if isinstance(iso_time, bytes) else iso_time
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds())
