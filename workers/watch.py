"""Reminders and deadlines: what waits, evaluated by the scheduler over the indexes the state keeps.

A *stay* is a run of one phase and status (workers/state.py): it began at ``since`` with the event
``entry``. A reminder rule fires for a matching stay once ``after`` has passed, then every ``every``,
at most ``max`` times; the n-th reminder of a stay has the id of (source, subject, rule, entry, n),
so two schedulers, or one restarted, send it once, and a second stay in the same phase (a new entry)
has reminders of its own. A deadline is approaching ``deadlines.lead`` before it and missed once it
passed while the subject is still open; each is one event per due time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from workers import derived, router
from workhooks.config.schema import OPEN_PHASES, Config, Reminder
from workhooks.core.derived import DEADLINE_APPROACHING, DEADLINE_MISSED, REMINDER_DUE, WAITING, human, iso
from workhooks.core.events import Event
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import State
from workhooks.store import keys

BATCH = 1000  # subjects read per round trip
FINISHED = "missed"


def reminder_count(rule: Reminder, since: float, now: float) -> int:
    """How many reminders a stay that began at ``since`` has earned by ``now``."""
    waited = now - since
    if waited < rule.after:
        return 0
    return min(rule.max, 1 + int((waited - rule.after) // rule.interval))


def what(source_platform: str | None, subject: str) -> str:
    """``order/00007848`` of a WorkReduce source -> "WorkReduce order 00007848"."""
    platform = PLATFORMS.get(source_platform or "")
    name = platform.presenter.name if platform is not None else "Subject"
    return f"{name} {subject.replace('/', ' ', 1)}"


def _platform_name(config: Config, source: str) -> str | None:
    found = config.sources.get(source)
    return found.platform if found is not None else None


def subject_data(config: Config, source: str, subject: str, state: State) -> dict[str, Any]:
    """What every reminder and deadline says about its subject: its fields as last seen, status, phase."""
    stay = state.get("stay") or {}
    current = state.get("current") if isinstance(state.get("current"), dict) else {}
    data: dict[str, Any] = {key: value for key, value in (current or {}).items() if not isinstance(value, dict | list)}
    data |= {"source": source, "subject": subject, "phase": stay.get("phase"), "status": stay.get("status"),
             "what": what(_platform_name(config, source), subject)}  # fmt: skip
    if state.get("status_label"):
        data["status_label"] = state["status_label"]
    return data


def probe(config: Config, source: str, subject: str, state: State, data: dict[str, Any]) -> Event:
    """What a rule's match is read against: type ``<platform>.<entity>`` (wordy.job, workreduce.order)."""
    kind = f"{_platform_name(config, source) or 'unknown'}.{subject.partition('/')[0]}"
    return Event("", source, kind, subject, "", data, (state.get("stay") or {}).get("phase"))


def reminder(config: Config, rule: Reminder, source: str, subject: str, state: State, count: int, now: float) -> Event:
    """The ``count``-th reminder of the subject's current stay (pure)."""
    stay = state["stay"]
    data = subject_data(config, source, subject, state)
    waited = human(now - float(stay["since"]))
    data |= {"rule": rule.name, "since": iso(float(stay["since"])), "waited_seconds": round(now - float(stay["since"])),
             "waited": waited, "reminder": count, "max": rule.max, "entry": stay["entry"],
             "waiting": WAITING.get(str(stay.get("phase")), "has waited {waited}").format(waited=waited)}  # fmt: skip
    identity = (subject, rule.name, stay["entry"], count)
    return derived.event(source, REMINDER_DUE, subject, data, identity, stay.get("phase"))


def deadline(config: Config, kind: str, source: str, subject: str, state: State, due: float, now: float) -> Event:
    """A deadline approaching or missed (pure): one event per subject, kind and due time."""
    data = subject_data(config, source, subject, state)
    data |= {"due": iso(due), "due_in": human(max(0.0, due - now))}
    return derived.event(source, kind, subject, data, (subject, kind, due), (state.get("stay") or {}).get("phase"))


def _states(connection: redis.Redis, members: list[Any]) -> list[tuple[str, str, State | None, dict[bytes, bytes]]]:
    pairs = [keys.split_member(member) for member in members]
    with connection.pipeline(transaction=False) as pipe:
        for source, subject in pairs:
            pipe.get(keys.state(source, subject))
            pipe.hgetall(keys.watched(source, subject))
        found = pipe.execute()
    return [
        (source, subject, json.loads(raw) if raw else None, sent)
        for (source, subject), raw, sent in zip(pairs, found[::2], found[1::2], strict=True)
    ]


def _mark(connection: redis.Redis, source: str, subject: str, field: str, value: str) -> None:
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(keys.watched(source, subject), field, value)
        pipe.expire(keys.watched(source, subject), keys.STATE_TTL)
        pipe.execute()


def _text(value: bytes | None) -> str:
    return value.decode() if value else ""


def _waiting(connection: redis.Redis, index: str, until: float) -> Iterator[tuple[str, str, State | None, Any]]:
    """Every subject in a phase index that entered its stay by ``until``, oldest first, BATCH at a time (all
    of them: a subject whose reminders are used up never hides one behind it)."""
    start = 0
    while True:
        members = list(connection.zrangebyscore(index, "-inf", until, start, BATCH))
        yield from _states(connection, members)
        if len(members) < BATCH:
            return
        start += BATCH


def reminders(connection: redis.Redis, config: Config, now: float, secrets: Iterable[str] = ()) -> list[str]:
    """Every reminder due now that was not sent yet; returns the ids emitted."""
    emitted: list[str] = []
    for phase in OPEN_PHASES:
        rules = [rule for rule in config.reminders if not rule.match.phase or phase in rule.match.phase]
        if not rules:
            continue
        earliest = now - min(rule.after for rule in rules)
        for source, subject, state, sent in _waiting(connection, keys.phase_index(phase), earliest):
            stay = (state or {}).get("stay") or {}
            if state is None or stay.get("phase") != phase:  # expired (or moved while we read): not here any more
                if state is None:
                    connection.zrem(keys.phase_index(phase), keys.subject_member(source, subject))
                continue
            for rule in rules:
                count = reminder_count(rule, float(stay["since"]), now)
                entry, _, done = _text(sent.get(rule.name.encode())).rpartition("|")
                if count == 0 or (entry == stay["entry"] and int(done or 0) >= count):
                    continue
                event = reminder(config, rule, source, subject, state, count, now)
                if not router.matches(rule.match, probe(config, source, subject, state, event.data)):
                    continue
                emitted.append(derived.emit(connection, event, secrets).id)
                _mark(connection, source, subject, rule.name, f"{stay['entry']}|{count}")
    return emitted


def deadlines(connection: redis.Redis, config: Config, now: float, secrets: Iterable[str] = ()) -> list[str]:
    """Deadlines approaching within the lead time, and missed ones; returns the ids emitted."""
    settings = config.deadlines
    if settings is None or not (settings.approaching or settings.missed):
        return []
    found: list[tuple[bytes, float]] = list(
        connection.zrangebyscore(keys.DEADLINES, "-inf", now + settings.lead, 0, BATCH, withscores=True)  # type: ignore[arg-type]
    )
    emitted: list[str] = []
    members = [member for member, _ in found]
    for (source, subject, state, sent), (member, due) in zip(_states(connection, members), found, strict=True):
        phase = ((state or {}).get("stay") or {}).get("phase")
        if state is None or phase not in OPEN_PHASES:
            connection.zrem(keys.DEADLINES, member)
            continue
        marked, _, how = _text(sent.get(b"due")).rpartition("|")
        seen = how if marked == repr(due) else ""
        kind = DEADLINE_MISSED if due <= now else DEADLINE_APPROACHING
        if kind == DEADLINE_MISSED:
            connection.zrem(keys.DEADLINES, member)  # an event that changes the deadline puts it back
            if settings.missed and seen != FINISHED:
                emitted.append(derived.emit(connection, deadline(config, kind, source, subject, state, due, now),
                                            secrets).id)  # fmt: skip
            _mark(connection, source, subject, "due", f"{due!r}|{FINISHED}")
        elif not seen:
            if settings.approaching:
                emitted.append(derived.emit(connection, deadline(config, kind, source, subject, state, due, now),
                                            secrets).id)  # fmt: skip
            _mark(connection, source, subject, "due", f"{due!r}|approaching")
    return emitted


def evaluate(connection: redis.Redis, config: Config, now: float) -> list[str]:
    """One evaluation of every rule and deadline (the scheduler calls it about once a second)."""
    secrets = config.secrets()
    return reminders(connection, config, now, secrets) + deadlines(connection, config, now, secrets)
