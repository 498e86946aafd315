"""Pure routing: which sinks an event goes to, by the config's routes, in order."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from receiver.config import Config, Match
from receiver.events import Event

_MISSING = object()


def _field(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _equal(actual: Any, wanted: Any) -> bool:
    return actual == wanted or (not isinstance(actual, (dict, list)) and str(actual) == str(wanted))


def matches(match: Match, event: Event) -> bool:
    if match.source is not None and event.source not in match.source:
        return False
    if match.type is not None and not any(fnmatchcase(event.type, pattern) for pattern in match.type):
        return False
    if match.subject is not None and not any(fnmatchcase(event.subject, pattern) for pattern in match.subject):
        return False
    if match.phase is not None and event.phase not in match.phase:
        return False
    for path, wanted in match.data.items():
        actual = _field(event.data, path)
        if actual is _MISSING or not any(_equal(actual, value) for value in wanted):
            return False
    return True


def sinks_for(config: Config, event: Event) -> list[str]:
    """Every sink of every matching route, each once, in the order the routes name them."""
    chosen: dict[str, None] = {}
    for route in config.routes:
        if matches(route.match, event):
            chosen.update(dict.fromkeys(route.to))
    return list(chosen)
