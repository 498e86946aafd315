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

from workers import settings
from workhooks.core.clock import utc_now
from workhooks.core.events import Event
from workhooks.platforms import PLATFORMS
from workhooks.platforms.api import AuthError, PollError
from workhooks.platforms.base import Item, Poller, SourceSettings, State
from workhooks.store import keys, telemetry
from workhooks.store.ingest import Ingest, prepare

MAX_BACKOFF = 3600.0
log = structlog.get_logger("workhooks.poller")


def _release(connection: redis.Redis, name: str, token: str) -> None:
    script = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
    connection.register_script(script)(keys=[keys.poll_lock(name)], args=[token])


def _back_off(connection: redis.Redis, name: str, interval: int, error: PollError) -> float:
    failures = int(connection.hincrby(keys.poll_status(name), "failures", 1))
    wait = error.backoff or min(interval * 2 ** min(failures, 10), MAX_BACKOFF)
    connection.set(keys.poll_backoff(name), 1, ex=max(1, int(wait)))
    return wait


def poll(connection: redis.Redis, name: str) -> dict[str, Any]:
    """Poll one source once; returns what it did (also kept in wh:poll:status:<name>)."""
    source = settings.config().sources.get(name)
    interval = source.interval() if source is not None else None
    poller = PLATFORMS[source.platform].poller if source is not None else None
    if source is None or interval is None or poller is None:
        return {"outcome": "not polled"}
    token = secrets.token_hex(8)
    lease = max(60, 2 * interval)
    if not connection.set(keys.poll_lock(name), token, nx=True, ex=lease):
        return {"outcome": "already polling"}
    started = time.perf_counter()
    api = poller.client(source)
    try:
        try:
            items = poller.fetch(source, api)
        except PollError as error:
            wait = _back_off(connection, name, interval, error)
            level = log.error if isinstance(error, AuthError) else log.warning
            hint = "check the source's key; polling again later" if isinstance(error, AuthError) else "backing off"
            level("poll_failed", source=name, error=str(error), hint=hint, next_poll_in_s=round(wait, 1))
            with connection.pipeline(transaction=False) as pipe:
                pipe.hset(keys.poll_status(name), mapping={"last_error": str(error), "last_error_at": utc_now()})
                telemetry.count(pipe, "workhooks_polls", name, "failed")
                pipe.execute()
            return {"outcome": "failed", "error": str(error)}
        emitted = _apply(connection, name, source, poller, items, api)
    finally:
        api.close()
        _release(connection, name, token)
    took = round((time.perf_counter() - started) * 1000, 1)
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(
            keys.poll_status(name),
            mapping={"last_ok_at": utc_now(), "items": len(items), "emitted": emitted, "requests": api.requests,
                     "duration_ms": took, "failures": 0, "last_error": ""},
        )  # fmt: skip
        telemetry.count(pipe, "workhooks_polls", name, "ok")
        pipe.execute()
    log.info("polled", source=name, items=len(items), emitted=emitted, requests=api.requests, duration_ms=took)
    return {"outcome": "ok", "items": len(items), "emitted": emitted}


def _record_silently(pipe: Any, name: str, poller: Poller, subject: str, item: Item) -> None:
    initial = poller.initial_state(item) if poller.initial_state else {"current": poller.snapshot(item)}
    state = {"subject": subject, "source": name, "events": [], **initial}
    pipe.set(keys.state(name, subject), json.dumps(state), ex=keys.STATE_TTL)


def _apply(
    connection: redis.Redis, name: str, source: SourceSettings, poller: Poller, items: list[Item], api: Any
) -> int:
    subjects = [f"{poller.entity}/{poller.key(item)}" for item in items]
    stored = connection.mget([keys.state(name, subject) for subject in subjects]) if subjects else []
    previous = [poller.previous(json.loads(raw) if raw else None) for raw in stored]
    known_key = keys.poll_known(name)
    baseline_key = keys.poll_baseline(name)
    # The first poll records what it finds without announcing it (unless announce_existing);
    # what is already known (from callbacks, or an earlier baseline) is compared as usual.
    baseline = not connection.exists(baseline_key) and not getattr(source, "announce_existing", False)
    silent_new = baseline or not poller.announce_new

    found = []
    with connection.pipeline(transaction=False) as pipe:
        for subject, before, item in zip(subjects, previous, items, strict=True):
            if before is None and silent_new:
                _record_silently(pipe, name, poller, subject, item)
                continue
            if before is None and poller.enrich is not None:
                poller.enrich(source, api, item)
            found += poller.changes(before, item)
        pipe.execute()
    members = connection.smembers(known_key)
    gone = {member.decode() if isinstance(member, bytes) else str(member) for member in members} - set(subjects)
    removed_subjects = []
    for subject in sorted(gone):
        raw = connection.get(keys.state(name, subject))
        state: State | None = json.loads(raw) if raw else None
        announced = poller.removed(state["current"]) if state and state.get("current") else []
        if announced:
            found += announced
            removed_subjects.append(subject)

    ingest = Ingest()
    emitted = 0
    for callback in found:
        event = Event.from_callback(name, callback)
        body = json.dumps(callback.data.get(poller.entity, {}), separators=(",", ":")).encode()
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
