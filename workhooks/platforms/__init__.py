"""Every platform workhooks speaks to, one package each, in one registry.

Adding a platform is one new package (settings, callback or poller, state, messages, samples)
exporting ``PLATFORM``, and one line in ``PLATFORMS`` below; config, routes, the OpenAPI
document, state, messages, polling and the CLI all read it from here.
"""

from __future__ import annotations

from workhooks.platforms import sharedworkforce, wordy, workreduce, worksection, worktaps
from workhooks.platforms.base import Platform

PLATFORMS: dict[str, Platform] = {
    platform.name: platform
    for platform in (
        wordy.PLATFORM,
        sharedworkforce.PLATFORM,
        workreduce.PLATFORM,
        worksection.PLATFORM,
        worktaps.PLATFORM,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(kind for platform in PLATFORMS.values() for kind in platform.event_types)


def of_event_type(event_type: str) -> Platform | None:
    """The platform an event type belongs to: its first dotted part names it."""
    return PLATFORMS.get(event_type.split(".", 1)[0])
