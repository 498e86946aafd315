"""WorkReduce: orders, polled (no callbacks)."""

from __future__ import annotations

from workhooks.platforms.base import Platform, polled_applier
from workhooks.platforms.workreduce import actions, messages, poller
from workhooks.platforms.workreduce.settings import WorkReduceSettings

PLATFORM = Platform(
    name="workreduce",
    settings=WorkReduceSettings,
    event_types=poller.EVENT_TYPES,
    presenter=messages.PRESENTER,
    appliers=dict.fromkeys(poller.EVENT_TYPES, polled_applier(poller.ENTITY)),
    status_phases=poller.STATUS_PHASES,
    poller=poller.POLLER,
    actions=actions.ACTIONS,
)
