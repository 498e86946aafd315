"""Pure routing: which sinks an event goes to, by the config's routes, in order."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from workhooks.config.schema import Config, Match
from workhooks.core.derived import DELIVERY_DEAD
from workhooks.core.events import Event
from workhooks.core.templates import Template
from workhooks.platforms import PLATFORMS

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
    return not _failures(match, event, first_only=True)


@dataclass(frozen=True, slots=True)
class Target:
    sink: str
    route: int  # index of the first matching route that names the sink: its template applies
    template: Template | None


def plan(config: Config, event: Event) -> list[Target]:
    """Every sink of every matching route, each once, in route order; `continue: false` stops there.
    A dead letter's announcement never goes to the sink that refused the delivery: it would fail alike."""
    chosen: dict[str, Target] = {}
    refused = event.data.get("sink") if event.type == DELIVERY_DEAD else None
    for index, route in enumerate(config.routes):
        if not matches(route.match, event):
            continue
        for sink in route.to:
            if sink != refused:
                chosen.setdefault(sink, Target(sink, index, route.template))
        if not route.continue_:
            break
    return list(chosen.values())


def sinks_for(config: Config, event: Event) -> list[str]:
    return [target.sink for target in plan(config, event)]


def explain(config: Config, event: Event) -> list[str]:
    """Why each route did or did not match one event, for `workhooks route`."""
    lines = []
    stopped = False
    for index, route in enumerate(config.routes, 1):
        if stopped:
            lines.append(f"route {index}: not reached (an earlier route has continue: false)")
            continue
        failed = _failures(route.match, event)
        if failed:
            lines.append(f"route {index}: no match: " + "; ".join(failed))
        else:
            lines.append(f"route {index}: match -> {', '.join(route.to)}")
            stopped = not route.continue_
    return lines


def _failures(match: Match, event: Event, first_only: bool = False) -> list[str]:
    failed: list[str] = []
    for key, allowed, actual in (
        ("source", match.source, event.source),
        ("type", match.type, event.type),
        ("subject", match.subject, event.subject),
        ("phase", match.phase, event.phase),
    ):
        if allowed is not None and not any(fnmatchcase(str(actual), str(pattern)) for pattern in allowed):
            failed.append(f"{key} is {actual!r}, wanted {' or '.join(map(repr, allowed))}")
            if first_only:
                return failed
    for path, wanted in match.data.items():
        actual = _field(event.data, path)
        if actual is _MISSING or not any(_equal(actual, value) for value in wanted):
            shown = "missing" if actual is _MISSING else repr(actual)
            failed.append(f"data.{path} is {shown}, wanted {' or '.join(map(repr, wanted))}")
    return failed


def reachable(config: Config) -> dict[str, dict[str, list[str]]]:
    """For each source and each event type its platform emits: the sinks it can reach, each with
    the conditions of the route that sends it there (subject, phase, data.*) — `workhooks check`
    and the console's sources both show this."""
    found: dict[str, dict[str, list[str]]] = {}
    for name, source in config.sources.items():
        platform = PLATFORMS[source.platform]
        for kind in platform.event_types:
            sample = Event("evt_sample", name, kind, "", "")
            reached: list[str] = []
            for route in config.routes:
                if _failures(route.match.model_copy(update={"subject": None, "phase": None, "data": {}}), sample):
                    continue
                extra = route.match.model_dump(exclude_none=True, include={"subject", "phase"})
                extra |= {f"data.{key}": value for key, value in route.match.data.items()}
                condition = " if " + " ".join(f"{k}={','.join(map(str, v))}" for k, v in extra.items()) if extra else ""
                reached += [f"{sink}{condition}" for sink in route.to if sink not in reached]
                if not route.continue_ and not extra:
                    break
            found.setdefault(name, {})[kind] = reached
    return found
