"""Shared Workforce: micro-tasks; task-response callbacks (JSON or XML), an API to reconcile missed ones."""

from __future__ import annotations

from workhooks.platforms.base import CallbackSource, Platform
from workhooks.platforms.sharedworkforce import actions, api, callback, messages, samples, state
from workhooks.platforms.sharedworkforce.settings import SharedWorkforceSettings

PLATFORM = Platform(
    name="sharedworkforce",
    settings=SharedWorkforceSettings,
    event_types=callback.EVENT_TYPES,
    presenter=messages.PRESENTER,
    appliers=state.APPLIERS,
    callback=CallbackSource(
        auth="api_key",
        parse=callback.parse,
        decode=callback.decode,
        to_callback=callback.to_callback,
        body_key=callback.api_key,
        from_headers=callback.from_headers,
        summary="A Shared Workforce task-response callback",
        body_schemas=callback.BODY_SCHEMAS,
    ),
    poller=api.RECONCILER,
    samples=samples.SAMPLES,
    actions=actions.ACTIONS,
)
