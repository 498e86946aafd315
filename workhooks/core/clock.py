"""Times as workhooks stores them: ISO 8601 in UTC with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
