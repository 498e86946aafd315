"""One poll of one pull source: fetch, compare with the state the workers keep, ingest what changed.

Polled changes enter through the same atomic, deduplicating ingest as callbacks, with ids
derived from the change itself, so two overlapping polls that see one change make one event.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis
import structlog

from receiver import keys
from receiver.config import PullSource, WorkReduceSource, WorksectionSource, WorkTapsSource
from receiver.events import Event, utc_now
from receiver.ingest import Ingest, prepare
from workers import settings
from workers.pollers import POLLERS
from workers.pollers.client import AuthError, PollError
from workers.state import STATE_TTL

MAX_BACKOFF = 3600.0
log = structlog.get_logger("workhooks.poller")


def _key(kind: str, name: str) -> str:
    return f"{keys.PREFIX}poll:{kind}:{name}"


def lock_key(name: str) -> str:
    return _key("lock", name)


def backoff_key(name: str) -> str:
    return _key("backoff", name)


def status_key(name: str) -> str:
    return _key("status", name)


def _state_key(name: str, subject: str) -> str:
    return f"{keys.PREFIX}state:{name}:{subject}"


def _release(connection: redis.Redis, name: str, token: str) -> None:
    script = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
    connection.register_script(script)(keys=[lock_key(name)], args=[token])


def _back_off(connection: redis.Redis, name: str, source: PullSource, error: PollError) -> float:
    failures = int(connection.hincrby(status_key(name), "failures", 1))
    wait = error.backoff or min(source.poll_interval * 2 ** min(failures, 10), MAX_BACKOFF)
    connection.set(backoff_key(name), 1, ex=max(1, int(wait)))
    return wait


def poll(connection: redis.Redis, name: str) -> dict[str, Any]:
    """Poll one source once; returns what it did (also kept in wh:poll:status:<name>)."""
    source = settings.config().sources.get(name)
    if not isinstance(source, (WorkReduceSource, WorksectionSource, WorkTapsSource)):
        return {"outcome": "not a pull source"}
    module = POLLERS[source.platform]
    token = secrets.token_hex(8)
    lease = max(60, 2 * source.poll_interval)
    if not connection.set(lock_key(name), token, nx=True, ex=lease):
        return {"outcome": "already polling"}
    started = time.perf_counter()
    api = module.client(source)
    try:
        try:
            items = module.fetch(source, api)
        except PollError as error:
            wait = _back_off(connection, name, source, error)
            level = log.error if isinstance(error, AuthError) else log.warning
            hint = "check the source's key; polling again later" if isinstance(error, AuthError) else "backing off"
            level("poll_failed", source=name, error=str(error), hint=hint, next_poll_in_s=round(wait, 1))
            connection.hset(status_key(name), mapping={"last_error": str(error), "last_error_at": utc_now()})
            return {"outcome": "failed", "error": str(error)}
        emitted = _apply(connection, name, source, module, items)
    finally:
        api.close()
        _release(connection, name, token)
    took = round((time.perf_counter() - started) * 1000, 1)
    connection.hset(
        status_key(name),
        mapping={"last_ok_at": utc_now(), "items": len(items), "emitted": emitted, "requests": api.requests,
                 "duration_ms": took, "failures": 0, "last_error": ""},
    )  # fmt: skip
    log.info("polled", source=name, items=len(items), emitted=emitted, requests=api.requests, duration_ms=took)
    return {"outcome": "ok", "items": len(items), "emitted": emitted}


def _apply(connection: redis.Redis, name: str, source: PullSource, module: Any, items: list[dict[str, Any]]) -> int:
    subjects = [f"{module.ENTITY}/{module.key(item)}" for item in items]
    stored = connection.mget([_state_key(name, subject) for subject in subjects]) if subjects else []
    previous = []
    for raw in stored:
        state = json.loads(raw) if raw else None
        previous.append(state.get("current") if state and not state.get("removed") else None)
    known_key = _key("known", name)
    baseline_key = _key("baseline", name)
    first_poll = not connection.exists(baseline_key)

    if first_poll and not source.announce_existing:
        with connection.pipeline(transaction=False) as pipe:
            for subject, item in zip(subjects, items, strict=True):
                state = {"subject": subject, "source": name, "events": [], "current": module.snapshot(item)}
                pipe.set(_state_key(name, subject), json.dumps(state), ex=STATE_TTL)
            if subjects:
                pipe.sadd(known_key, *subjects)
            pipe.set(baseline_key, utc_now())
            pipe.execute()
        log.info("baseline_recorded", source=name, items=len(items), hint="announce_existing: true to announce them")
        return 0

    found = []
    for before, item in zip(previous, items, strict=True):
        found += module.changes(before, item)
    members = connection.smembers(known_key)
    gone = {member.decode() if isinstance(member, bytes) else str(member) for member in members} - set(subjects)
    removed_subjects = []
    for subject in sorted(gone):
        raw = connection.get(_state_key(name, subject))
        state = json.loads(raw) if raw else None
        announced = module.removed(state["current"]) if state and state.get("current") else []
        if announced:
            found += announced
            removed_subjects.append(subject)

    ingest = Ingest()
    emitted = 0
    for callback in found:
        event = Event.from_callback(name, callback)
        body = json.dumps(callback.data.get(module.ENTITY, {}), separators=(",", ":")).encode()
        emitted += ingest.submit_sync(connection, prepare(event, "application/json", body, source.secrets()))
    with connection.pipeline(transaction=False) as pipe:
        if subjects:
            pipe.sadd(known_key, *subjects)
        if removed_subjects:
            pipe.srem(known_key, *removed_subjects)
        pipe.set(baseline_key, utc_now())
        pipe.execute()
    return emitted
