"""Wordy's vocabulary: its event types, job statuses, their labels, phases and order (wordy-api-1.0.txt)."""

from __future__ import annotations

from workhooks.core.events import Phase

STATUS_CHANGED = "wordy.job.status_changed"
MESSAGE_ADDED = "wordy.job.message_added"
EVENT_TYPES = (STATUS_CHANGED, MESSAGE_ADDED)

STATUS_LABELS = {
    "awc": "awaiting word count",
    "acp": "awaiting customer payment",
    "aer": "awaiting editor response",
    "acr": "awaiting customer response",
    "c": "complete",
}
UNKNOWN = "unknown"  # the label of a status the document does not name
STATUS_PHASES: dict[str, Phase] = {
    "awc": "queued",
    "acp": "awaiting_client",
    "aer": "in_progress",
    "acr": "awaiting_client",
    "c": "completed",
}
# Where each status stands in a job's life; a status never returns to a lower rank
# except through a transition that starts from the current status (a rejected edit).
STATUS_RANK = {"awc": 0, "acp": 1, "aer": 2, "acr": 3, "c": 4}

# The moves a job makes (wordy-api-1.0.txt, and a rejected edit going back to the editor, which the
# document implies with POST /job/{id}/reject/ without naming the status that follows).
NEXT: dict[str, tuple[str, ...]] = {"awc": ("acp",), "acp": ("aer",), "aer": ("acr",), "acr": ("aer", "c"), "c": ()}


def reachable(start: str, goal: str) -> bool:
    """Can a job in ``start`` be in ``goal`` later (or now)?"""
    seen, frontier = {start}, [start]
    while frontier:
        here = frontier.pop()
        if here == goal:
            return True
        for step in NEXT.get(here, ()):
            if step not in seen:
                seen.add(step)
                frontier.append(step)
    return False
