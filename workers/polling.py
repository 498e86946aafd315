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

from receiver import keys, metrics
from receiver.config import poll_interval_of
from receiver.events import Event, utc_now
from receiver.ingest import Ingest, prepare
from workers import settings
from workers.pollers import POLLERS, RECONCILERS
from workers.pollers.client import AuthError, PollError
from workers.state import STATE_TTL
from workers.state import key_for as state_key_for

MAX_BACKOFF = 3600.0
log = structlog.get_logger("workhooks.poller")


def _key(kind: str, name: str) -> str:
    return f"{keys.PREFIX}poll:{kind}:{name}"


def lock_key(name: str) -> str:
    return _key("lock", name)


def backoff_key(name: str) -> str:
    return _key("backoff", name)


def status_key(name: str) -> str:
    return keys.poll_status(name)


def _release(connection: redis.Redis, name: str, token: str) -> None:
    script = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
    connection.register_script(script)(keys=[lock_key(name)], args=[token])


def _back_off(connection: redis.Redis, name: str, interval: int, error: PollError) -> float:
    failures = int(connection.hincrby(status_key(name), "failures", 1))
    wait = error.backoff or min(interval * 2 ** min(failures, 10), MAX_BACKOFF)
    connection.set(backoff_key(name), 1, ex=max(1, int(wait)))
    return wait


def poll(connection: redis.Redis, name: str) -> dict[str, Any]:
    """Poll one source once; returns what it did (also kept in wh:poll:status:<name>)."""
    source = settings.config().sources.get(name)
    interval = poll_interval_of(source)
    module = POLLERS.get(source.platform) or RECONCILERS.get(source.platform) if source is not None else None
    if source is None or interval is None or module is None:
        return {"outcome": "not polled"}
    token = secrets.token_hex(8)
    lease = max(60, 2 * interval)
    if not connection.set(lock_key(name), token, nx=True, ex=lease):
        return {"outcome": "already polling"}
    started = time.perf_counter()
    api = module.client(source)
    try:
        try:
            items = module.fetch(source, api)
        except PollError as error:
            wait = _back_off(connection, name, interval, error)
            level = log.error if isinstance(error, AuthError) else log.warning
            hint = "check the source's key; polling again later" if isinstance(error, AuthError) else "backing off"
            level("poll_failed", source=name, error=str(error), hint=hint, next_poll_in_s=round(wait, 1))
            with connection.pipeline(transaction=False) as pipe:
                pipe.hset(status_key(name), mapping={"last_error": str(error), "last_error_at": utc_now()})
                metrics.count(pipe, "workhooks_polls", name, "failed")
                pipe.execute()
            return {"outcome": "failed", "error": str(error)}
        emitted = _apply(connection, name, source, module, items, api)
    finally:
        api.close()
        _release(connection, name, token)
    took = round((time.perf_counter() - started) * 1000, 1)
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(
            status_key(name),
            mapping={"last_ok_at": utc_now(), "items": len(items), "emitted": emitted, "requests": api.requests,
                     "duration_ms": took, "failures": 0, "last_error": ""},
        )  # fmt: skip
        metrics.count(pipe, "workhooks_polls", name, "ok")
        pipe.execute()
    log.info("polled", source=name, items=len(items), emitted=emitted, requests=api.requests, duration_ms=took)
    return {"outcome": "ok", "items": len(items), "emitted": emitted}


def _current(state: dict[str, Any] | None) -> dict[str, Any] | None:
    return state.get("current") if state and not state.get("removed") else None


def _record_silently(pipe: Any, name: str, module: Any, subject: str, item: dict[str, Any]) -> None:
    initial = getattr(module, "initial_state", lambda item: {"current": module.snapshot(item)})(item)
    state = {"subject": subject, "source": name, "events": [], **initial}
    pipe.set(state_key_for(name, subject), json.dumps(state), ex=STATE_TTL)


def _apply(connection: redis.Redis, name: str, source: Any, module: Any, items: list[dict[str, Any]], api: Any) -> int:
    subjects = [f"{module.ENTITY}/{module.key(item)}" for item in items]
    stored = connection.mget([state_key_for(name, subject) for subject in subjects]) if subjects else []
    read_previous = getattr(module, "previous", _current)
    previous = [read_previous(json.loads(raw) if raw else None) for raw in stored]
    known_key = _key("known", name)
    baseline_key = _key("baseline", name)
    # The first poll records what it finds without announcing it (unless announce_existing);
    # what is already known (from callbacks, or an earlier baseline) is compared as usual.
    baseline = not connection.exists(baseline_key) and not getattr(source, "announce_existing", False)
    silent_new = baseline or not getattr(module, "ANNOUNCE_NEW", True)

    found = []
    with connection.pipeline(transaction=False) as pipe:
        for subject, before, item in zip(subjects, previous, items, strict=True):
            if before is None and silent_new:
                _record_silently(pipe, name, module, subject, item)
                continue
            if before is None and hasattr(module, "enrich"):
                module.enrich(source, api, item)
            found += module.changes(before, item)
        pipe.execute()
    members = connection.smembers(known_key)
    gone = {member.decode() if isinstance(member, bytes) else str(member) for member in members} - set(subjects)
    removed_subjects = []
    for subject in sorted(gone):
        raw = connection.get(state_key_for(name, subject))
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
    if baseline:
        log.info("baseline_recorded", source=name, items=len(items), hint="announce_existing: true to announce them")
    return emitted
