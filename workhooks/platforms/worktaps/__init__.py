"""WorkTaps: staff accounts, polled."""

from __future__ import annotations

from workhooks.platforms.base import Platform, polled_applier
from workhooks.platforms.worktaps import messages, poller
from workhooks.platforms.worktaps.settings import WorkTapsSettings

PLATFORM = Platform(
    name="worktaps",
    settings=WorkTapsSettings,
    event_types=poller.EVENT_TYPES,
    presenter=messages.PRESENTER,
    appliers=dict.fromkeys(poller.EVENT_TYPES, polled_applier(poller.ENTITY)),
    poller=poller.POLLER,
)
