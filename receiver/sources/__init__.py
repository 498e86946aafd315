"""One module per platform that calls us back; each offers a pure ``parse(body, content_type)``."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from receiver.events import Callback
from receiver.sources import sharedworkforce, wordy

PLATFORMS: dict[str, ModuleType] = {module.PLATFORM: module for module in (wordy, sharedworkforce)}
EVENT_TYPES: tuple[str, ...] = tuple(kind for module in PLATFORMS.values() for kind in module.EVENT_TYPES)


def parser(platform: str) -> Callable[[bytes, str | None], Callback]:
    parse: Callable[[bytes, str | None], Callback] = PLATFORMS[platform].parse
    return parse
