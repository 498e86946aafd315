"""The work itself, as people look at it: every job, task and order with where it stands, its timeline,
and the actions that apply — the console's Work view and subject page, `workhooks work` and `workhooks act`.

Subjects come from one index (keys.SUBJECTS, by their last event), their states in one round trip.
A timeline is the subject's events (each with what became of its deliveries) and the actions people
took on it (store/actions.py), in time order, each as a sentence rather than raw JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from workers import delivery
from workers.actions import status_of
from workers.messages import render
from workhooks.config.schema import Config
from workhooks.core.events import Event
from workhooks.core.redact import redact_text
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import State
from workhooks.store import actions, keys, stays
from workhooks.store.actions import ActionRecord, Actor

MAX_ROWS = 500
SCAN_ROWS = 5000  # index entries read at most for one filtered page


def offered(config: Config, source: str, state: State | None) -> list[dict[str, Any]]:
    """The actions that apply to the subject now, as a console or a CLI shows them."""
    settings = config.sources.get(source)
    if settings is None:
        return []
    found = []
    for action in PLATFORMS[settings.platform].actions_for(state, settings):
        link = action.link(settings, str((state or {}).get("subject", "")), state or {}) if action.link else None
        if action.perform is None and not link:
            continue
        found.append({"name": action.name, "label": action.label, "ask": action.ask, "confirm": action.confirm,
                      "link": link, "style": action.style})  # fmt: skip
    return found


def rows(
    connection: redis.Redis, config: Config, phase: str | None = None, source: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Subjects, most recently active first; ``phase`` (awaiting_client: "everything awaiting us") and
    ``source`` narrow them."""
    limit = max(1, min(limit, MAX_ROWS))
    found: list[dict[str, Any]] = []
    start = 0
    now = time.time()
    while len(found) < limit and start < SCAN_ROWS:
        page = connection.zrevrange(keys.SUBJECTS, start, start + 199, withscores=True)
        members = cast(list[tuple[bytes, float]], page)
        if not members:
            break
        start += len(members)
        pairs = [keys.split_member(member) for member, _ in members]
        states = connection.mget([keys.state(name, subject) for name, subject in pairs])
        for (name, subject), raw in zip(pairs, cast(list[bytes | None], states), strict=True):
            state = json.loads(raw) if raw else None
            if state is None or (source and name != source) or name not in config.sources:
                continue
            stay = stays.of(state)
            if phase and stay.get("phase") != phase:
                continue
            events = state.get("events") or []
            since = stay.get("since")
            found.append({
                "source": name,
                "platform": config.sources[name].platform,
                "subject": subject,
                "status": status_of(state),
                "phase": stay.get("phase"),
                "since": since,
                "in_phase_seconds": round(now - float(since)) if isinstance(since, int | float) else None,
                "last_event": events[-1] if events else None,
                "updated_at": state.get("updated_at"),
                "actions": [item["name"] for item in offered(config, name, state)],
            })  # fmt: skip
            if len(found) == limit:
                break
    _last_events(connection, config, found)
    return found


def _last_events(connection: redis.Redis, config: Config, found: list[dict[str, Any]]) -> None:
    """Each row's last event: its type and what became of its deliveries (one round trip)."""
    sinks = list(config.sinks)
    with connection.pipeline(transaction=False) as pipe:
        for row in found:
            event_id = row["last_event"] or ""
            pipe.get(keys.event(event_id))
            for sink in sinks:
                pipe.hget(keys.delivery(delivery.delivery_id(event_id, sink)), "status")
        replies = pipe.execute()
    width = 1 + len(sinks)
    for index, row in enumerate(found):
        raw, *statuses = replies[index * width : (index + 1) * width]
        event = Event.from_json(raw) if raw else None
        row["last_event"] = {"id": event.id, "type": event.type, "time": event.time} if event else None
        row["deliveries"] = {sink: value.decode() for sink, value in zip(sinks, statuses, strict=True) if value}


@dataclass(frozen=True, slots=True)
class Entry:
    at: str
    kind: str  # event | action
    text: str
    detail: dict[str, Any]


def _said(record: ActionRecord) -> str:
    who = record.actor.shown()
    if record.status == "done":
        return f"{record.action} by {who}: {record.answer}"
    if record.status in ("queued", "sending"):
        return f"{record.action} by {who}: {record.status}"
    return f"{record.action} by {who} {record.status}: {record.answer}"


def timeline(connection: redis.Redis, config: Config, source: str, subject: str) -> dict[str, Any] | None:
    """A subject: where it stands, its history as sentences (events and actions in time order), what may be done."""
    raw = connection.get(keys.state(source, subject))
    if raw is None:
        return None
    state = json.loads(raw)
    sinks = list(config.sinks)
    ids = [str(event_id) for event_id in state.get("events") or []]
    with connection.pipeline(transaction=False) as pipe:
        for event_id in ids:
            pipe.get(keys.event(event_id))
            for sink in sinks:
                pipe.hget(keys.delivery(delivery.delivery_id(event_id, sink)), "status")
        replies = pipe.execute()
    entries: list[Entry] = []
    width = 1 + len(sinks)
    for index in range(len(ids)):
        found, *statuses = replies[index * width : (index + 1) * width]
        if not found:
            continue
        event = Event.from_json(found)
        try:
            title = render(event).title
        except Exception:
            title = event.type
        shipped = {sink: value.decode() for sink, value in zip(sinks, statuses, strict=True) if value}
        entries.append(Entry(event.time, "event", title, {"id": event.id, "type": event.type, "phase": event.phase,
                                                          "deliveries": shipped}))  # fmt: skip
    for record in actions.for_subject(connection, source, subject) + actions.refusals(connection, source, subject):
        entries.append(Entry(record.finished_at or record.requested_at, "action", _said(record), record.as_dict()))
    entries.sort(key=lambda entry: stays.unix(entry.at))
    stay = stays.of(state)
    return {
        "source": source,
        "subject": subject,
        "platform": config.sources[source].platform if source in config.sources else None,
        "status": status_of(state),
        "phase": stay.get("phase"),
        "since": stay.get("since"),
        "stay": stay.get("entry"),
        "timeline": [{**e.detail, "at": e.at, "kind": e.kind, "said": e.text} for e in entries],
        "actions": offered(config, source, state),
    }


class ActionRefused(Exception):
    """An action that cannot be asked for (unknown, does not apply now); the message says why."""


def ask(
    connection: redis.Redis,
    config: Config,
    source: str,
    subject: str,
    name: str,
    actor: Actor,
    text: str | None = None,
    stay: str | None = None,
    request_id: str | None = None,
    queue: bool = True,
) -> tuple[ActionRecord, bool]:
    """Ask for an action from the console, an email link or the CLI: checked against the subject's state now.
    ``stay``: the stay the person saw (default: the current one), so two people confirming is one action."""
    current = connection.get(keys.state(source, subject))
    state = json.loads(current) if current else None
    why = actions.why_not(config, source, name, state)
    if why is not None:
        raise ActionRefused(why)
    action = PLATFORMS[config.sources[source].platform].actions[name]
    if action.ask is not None and not (text or "").strip():
        raise ActionRefused(f"{name} needs a text: {action.ask}")
    stay = stay or stays.entry(state)
    once = actions.identity(source, subject, name, action.once, stay, request_id)
    said = redact_text(text, config.secrets()) if text else None
    return actions.ask(connection, source=source, subject=subject, action=name, actor=actor, once_key=once, text=said,
                       stay=stay, queue=queue)  # fmt: skip
