"""Events workhooks derives itself — reminders, deadlines, account and delivery health — and how they read.

Platforms tell us what changed, never what failed to change: these events say that. Each has a
deterministic id per occurrence (workers/derived.py), carries no ``Observation`` (they never take
part in the resend rule), and leaves its subject's state alone (workers/state.py).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from workhooks.core.templates import Template

REMINDER_DUE = "workhooks.reminder.due"
DEADLINE_APPROACHING = "workhooks.deadline.approaching"
DEADLINE_MISSED = "workhooks.deadline.missed"
SOURCE_UNAUTHORIZED = "workhooks.source.unauthorized"
SOURCE_RECOVERED = "workhooks.source.recovered"
DELIVERY_DEAD = "workhooks.delivery.dead"
# Owned by a platform (their default texts are its presenter's), derived all the same.
BALANCE_LOW = "wordy.account.balance_low"
BALANCE_RECOVERED = "wordy.account.balance_recovered"

# The source of health events (a refused key, a dead letter): not a configured source, so a route that names
# a source never reaches them unasked (an ERP fed by `source: orders` is not told of dead letters); route by type.
HEALTH_SOURCE = "workhooks"

WORKHOOKS_TYPES = (
    REMINDER_DUE,
    DEADLINE_APPROACHING,
    DEADLINE_MISSED,
    SOURCE_UNAUTHORIZED,
    SOURCE_RECOVERED,
    DELIVERY_DEAD,
)
TYPES = (*WORKHOOKS_TYPES, BALANCE_LOW, BALANCE_RECOVERED)

# How a phase reads in a sentence: "Wordy job 123 has waited 3 days for you".
WAITING = {
    "awaiting_client": "has waited {waited} for you",
    "in_progress": "has been in progress for {waited}",
    "queued": "has been queued for {waited}",
}

DEFAULTS: dict[str, Template] = {
    REMINDER_DUE: Template(
        title="{{ data.what }} {{ data.waiting }}",
        body="{{ data.what }} is {{ data.get('status_label') or data.get('status') or data.get('phase') }} since"
        " {{ data.since }} (reminder {{ data.reminder }} of {{ data.max }}, rule {{ data.rule }}).",
    ),
    DEADLINE_APPROACHING: Template(
        title="{{ data.what }} is due in {{ data.due_in }}",
        body="Due {{ data.due }}; it is {{ data.get('status_label') or data.get('status') or data.get('phase') }}.",
    ),
    DEADLINE_MISSED: Template(
        title="{{ data.what }} missed its deadline",
        body="It was due {{ data.due }} and is still"
        " {{ data.get('status_label') or data.get('status') or data.get('phase') }}.",
    ),
    SOURCE_UNAUTHORIZED: Template(
        title="Source {{ data.source }}: the platform refuses our key",
        body="Polling {{ data.source }} fails: {{ data.error }}. Nothing is read from it until the key is fixed.",
    ),
    SOURCE_RECOVERED: Template(
        title="Source {{ data.source }} is polled again",
        body="The platform accepts the key again"
        "{% if data.get('since') %} (refused since {{ data.since }}){% endif %}.",
    ),
    DELIVERY_DEAD: Template(
        title="Delivery to {{ data.sink }} failed for good: {{ data.event_type }} {{ data.subject }}",
        body="Event {{ data.event_id }} reached dead letters after {{ data.attempts }} attempt(s): "
        "{{ data.error }}. Replay: workhooks replay {{ data.delivery_id }}",
    ),
}


def is_derived(event_type: str) -> bool:
    return event_type in TYPES


def human(seconds: float) -> str:
    """A duration as people say it: "45 seconds", "3 hours", "3 days" (rounded down, never below 1)."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size or unit == "second":
            count = max(1, math.floor(seconds / size))
            return f"{count} {unit}{'s' if count != 1 else ''}"
    raise AssertionError("unreachable")


EARLIEST = 1_000_000_000  # 2001-09-09: an earlier Unix time is a placeholder (Wordy's document shows 123)


def parse_time(value: object) -> float | None:
    """A deadline as platforms send it, as Unix seconds: Unix seconds (a number or digits; milliseconds
    when it is that large) or ISO 8601 (no zone: UTC). None for anything else, and for times before 2001,
    which are placeholders rather than deadlines."""
    if isinstance(value, bool) or value is None:
        return None
    seconds: float | None = None
    if isinstance(value, int | float) and math.isfinite(value):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isascii() and text.replace(".", "", 1).isdigit() and len(text) < 20:
            seconds = float(text)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if seconds is None:
        return None
    if seconds > 100_000_000_000:  # milliseconds
        seconds /= 1000
    return seconds if seconds >= EARLIEST else None


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
