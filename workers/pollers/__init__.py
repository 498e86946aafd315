"""One module per platform without callbacks; each offers client/fetch (I/O) and pure key/snapshot/changes/removed."""

from __future__ import annotations

from types import ModuleType

from workers.pollers import sharedworkforce, wordy, workreduce, worksection, worktaps

POLLERS: dict[str, ModuleType] = {module.PLATFORM: module for module in (workreduce, worksection, worktaps)}
# Callback platforms polled only to catch what their callbacks missed (their events are the callbacks' own).
RECONCILERS: dict[str, ModuleType] = {module.PLATFORM: module for module in (wordy, sharedworkforce)}
EVENT_TYPES: tuple[str, ...] = tuple(kind for module in POLLERS.values() for kind in module.EVENT_TYPES)
ENTITIES: tuple[str, ...] = tuple(dict.fromkeys(module.ENTITY for module in POLLERS.values()))
