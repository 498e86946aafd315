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

from workers import derived, settings
from workers import state as state_module
from workhooks.core.clock import utc_now
from workhooks.core.events import Event
from workhooks.platforms import PLATFORMS
from workhooks.platforms.api import AuthError, PartialPollError, PollError
from workhooks.platforms.base import Item, Poller, SourceSettings
from workhooks.store import keys, stays, telemetry
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
    partial: PartialPollError | None = None
    try:
        try:
            items = poller.fetch(source, api)
        except PartialPollError as error:  # what was read before the error is applied all the same
            items, partial = error.items, error
        except PollError as error:
            wait = _back_off(connection, name, interval, error)
            level = log.error if isinstance(error, AuthError) else log.warning
            hint = "check the source's key; polling again later" if isinstance(error, AuthError) else "backing off"
            level("poll_failed", source=name, error=str(error), hint=hint, next_poll_in_s=round(wait, 1))
            with connection.pipeline(transaction=False) as pipe:
                pipe.hset(keys.poll_status(name), mapping={"last_error": str(error), "last_error_at": utc_now()})
                telemetry.count(pipe, "workhooks_polls", name, "failed")
                pipe.execute()
            if isinstance(error, AuthError):
                derived.source_refused(connection, name, str(error), settings.config().secrets())
            return {"outcome": "failed", "error": str(error)}
        emitted = _apply(connection, name, source, poller, items, api, complete=partial is None or partial.complete)
    finally:
        api.close()
        _release(connection, name, token)
    took = round((time.perf_counter() - started) * 1000, 1)
    derived.source_accepted(connection, name, settings.config().secrets())  # the listing was read: the key works
    if partial is not None:
        wait = _back_off(connection, name, interval, partial)
        log.warning("poll_partial", source=name, error=str(partial), items=len(items), emitted=emitted,
                    next_poll_in_s=round(wait, 1))  # fmt: skip
        with connection.pipeline(transaction=False) as pipe:
            pipe.hset(keys.poll_status(name), mapping={"last_error": str(partial), "last_error_at": utc_now(),
                                                       "items": len(items), "emitted": emitted})  # fmt: skip
            telemetry.count(pipe, "workhooks_polls", name, "partial")
            pipe.execute()
        return {"outcome": "partial", "items": len(items), "emitted": emitted, "error": str(partial)}
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


def _record_silently(pipe: Any, name: str, source: SourceSettings, poller: Poller, subject: str, item: Item) -> None:
    initial = poller.initial_state(item) if poller.initial_state else {"current": poller.snapshot(item)}
    state = {"subject": subject, "source": name, "events": [], **initial}
    stays.settle(pipe, state, PLATFORMS[source.platform], time.time(), stays.first_entry(), None)
    pipe.set(keys.state(name, subject), json.dumps(state), ex=keys.STATE_TTL)
    state_module.index(pipe, name, subject, time.time())


def _keep_deadlines(connection: redis.Redis, name: str, source: SourceSettings, poller: Poller,
                    subjects: list[str], stored: list[Any], items: list[Item]) -> None:  # fmt: skip
    """Every listing shows each item's deadline: a changed one goes into its subject's state and the index."""
    if poller.due is None:
        return
    platform = PLATFORMS[source.platform]
    for subject, raw, item in zip(subjects, stored, items, strict=True):
        due = poller.due(item)
        if raw is None or json.loads(raw).get("due") != due:
            state_module.keep_facts(connection, platform, name, subject, {"due": due})


def _key_of(poller: Poller, item: Item) -> str | None:
    try:
        return poller.key(item)
    except (KeyError, TypeError):  # a snapshot from before this poller kept its key
        return None


def _apply(
    connection: redis.Redis,
    name: str,
    source: SourceSettings,
    poller: Poller,
    items: list[Item],
    api: Any,
    complete: bool = True,
) -> int:
    subjects = [f"{poller.entity}/{poller.key(item)}" for item in items]
    stored = connection.mget([keys.state(name, subject) for subject in subjects]) if subjects else []
    # The diff base is what the last poll saw (kept by the poller itself: the workers' state lags
    # ingest, so a second change before a worker applied the first would otherwise be missed), else
    # the state (a subject a callback or the release before told us about).
    seen = connection.hmget(keys.poll_seen(name), subjects) if subjects else []
    previous = [
        json.loads(last) if last else poller.previous(json.loads(raw) if raw else None)
        for last, raw in zip(seen, stored, strict=True)
    ]
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
                _record_silently(pipe, name, source, poller, subject, item)
                continue
            if before is None and poller.enrich is not None:
                poller.enrich(source, api, item)
            found += poller.changes(before, item)
        pipe.execute()
    members = connection.smembers(known_key) if complete else set()  # only a whole listing shows what is gone
    gone = sorted({member.decode() if isinstance(member, bytes) else str(member) for member in members} - set(subjects))
    stored_gone = connection.mget([keys.state(name, subject) for subject in gone]) if gone else []
    seen_gone = connection.hmget(keys.poll_seen(name), gone) if gone else []
    last_seen: dict[str, Any] = {  # as the last poll saw it (the state may lag), else as the state has it
        subject: json.loads(seen) if seen else (json.loads(raw).get("current") if raw else None)
        for subject, seen, raw in zip(gone, seen_gone, stored_gone, strict=True)
    }
    unknown = [subject for subject in gone if not last_seen.get(subject)]  # nothing known about it: stop tracking
    by_key = {_key_of(poller, item): subject for subject, item in last_seen.items() if item}
    by_key.pop(None, None)
    try:
        learned = poller.vanished(source, api, [last_seen[subject] for subject in by_key.values()]) if by_key else None
    except PollError as error:  # what we read is still applied; the missing ones are looked up next time
        log.warning("poll_lookup_failed", source=name, missing=len(by_key), error=str(error))
        learned = None
    closed = [by_key[item_key] for item_key in learned.forget if item_key in by_key] if learned else []
    if learned is not None:
        found += learned.callbacks

    ingest, every_secret = Ingest(), settings.config().secrets()
    emitted = 0
    for callback in found:
        event = Event.from_callback(name, callback)
        body = json.dumps(callback.data.get(poller.entity, {}), separators=(",", ":")).encode()
        emitted += ingest.submit_sync(connection, prepare(event, "application/json", body, every_secret)).created
    with connection.pipeline(transaction=False) as pipe:
        if subjects:
            pipe.sadd(known_key, *subjects)
            snapshots: dict[Any, Any] = {
                subject: json.dumps(poller.carry(before, poller.snapshot(item)), separators=(",", ":"))
                for subject, before, item in zip(subjects, previous, items, strict=True)
            }
            pipe.hset(keys.poll_seen(name), mapping=snapshots)
        if unknown or closed:
            pipe.srem(known_key, *unknown, *closed)
        if unknown:
            pipe.hdel(keys.poll_seen(name), *unknown)
        if closed:  # removed or closed: if it comes back, that is a new arrival
            pipe.hset(keys.poll_seen(name), mapping=dict.fromkeys(closed, "null"))
            pipe.zadd(keys.poll_closed(name), dict.fromkeys(closed, time.time()))
        returned = [subject for subject, last in zip(subjects, seen, strict=True) if last == b"null"]
        if returned:  # back again: no longer closed
            pipe.zrem(keys.poll_closed(name), *returned)
        pipe.set(baseline_key, utc_now())
        pipe.execute()
    _forget_long_closed(connection, name)
    _keep_deadlines(connection, name, source, poller, subjects, stored, items)
    if baseline:
        log.info("baseline_recorded", source=name, items=len(items), hint="announce_existing: true to announce them")
    return emitted


FORGET_BATCH = 1000


def _forget_long_closed(connection: redis.Redis, name: str) -> None:
    """Subjects closed longer than a state is kept are forgotten, so the diff base does not grow for ever."""
    old = connection.zrangebyscore(keys.poll_closed(name), "-inf", time.time() - keys.STATE_TTL, 0, FORGET_BATCH)
    if old:
        with connection.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.poll_seen(name), *old)
            pipe.zrem(keys.poll_closed(name), *old)
            pipe.execute()
