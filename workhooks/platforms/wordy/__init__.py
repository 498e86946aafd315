"""Wordy (wordy.com API 1.0): copy-editing jobs; status and message callbacks, an API for confirm and reconcile."""

from __future__ import annotations

from workhooks.platforms.base import CallbackSource, Platform
from workhooks.platforms.wordy import actions, api, callback, messages, samples, state, statuses
from workhooks.platforms.wordy.settings import WordySettings

PLATFORM = Platform(
    name="wordy",
    settings=WordySettings,
    event_types=statuses.EVENT_TYPES,
    presenter=messages.PRESENTER,
    appliers=state.APPLIERS,
    status_phases=statuses.STATUS_PHASES,
    callback=CallbackSource(
        auth="path_token",
        parse=callback.parse,
        decode=callback.decode,
        to_callback=callback.to_callback,
        summary="A Wordy status or message callback",
        body_schemas=callback.BODY_SCHEMAS,
    ),
    poller=api.RECONCILER,
    samples=samples.SAMPLES,
    confirm=api.confirm,
    occurrences=api.occurrences,
    balance=api.balance,
    actions=actions.ACTIONS,
)
