"""Worksection: project tasks and comments, polled through the admin API."""

from __future__ import annotations

from workhooks.platforms.base import Platform, polled_applier
from workhooks.platforms.worksection import actions, messages, poller
from workhooks.platforms.worksection.settings import WorksectionSettings

PLATFORM = Platform(
    name="worksection",
    settings=WorksectionSettings,
    event_types=poller.EVENT_TYPES,
    presenter=messages.PRESENTER,
    appliers=dict.fromkeys(poller.EVENT_TYPES, polled_applier(poller.ENTITY)),
    status_phases=poller.STATUS_PHASES,
    poller=poller.POLLER,
    actions=actions.ACTIONS,
)
