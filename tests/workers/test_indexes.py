"""The delivery and quarantine indexes are bounded: trimmed past their TTL on write, quarantine capped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from tests.servers import deliver_queued
from workers import confirmation, delivery, settings
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import health, keys, quarantine

DAY = 24 * 3600


def event(job: int) -> Event:
    return Event.from_callback("wordy-main", wordy.parse(b'{"status": ["aer", "acr"], "job_id": %d}' % job, None))


def quarantine_some(redis_url: str, count: int) -> list[str]:
    async def put_all() -> list[str]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return [
                await quarantine.put(client, "wordy-main", "bad", "application/json", b"{" * 3) for _ in range(count)
            ]
        finally:
            await client.aclose()

    return asyncio.run(put_all())


def written_by_the_release_before(rdb: redis.Redis, index: str, ids_ages: dict[str, float], hashes: bool) -> None:
    """Index entries as the release before left them: never trimmed, their hashes expired (or not)."""
    now = time.time()
    rdb.zadd(index, {item_id: now - age for item_id, age in ids_ages.items()})
    if hashes:
        for item_id in ids_ages:
            rdb.hset(keys.quarantined(item_id), mapping={"source": "wordy-main", "body": b"old"})


def test_quarantine_drops_ids_past_its_ttl_when_one_is_added_and_the_gauge_counts_only_live_ones(
    rdb: redis.Redis, redis_url: str
) -> None:
    expired = {f"q_old_{n}": keys.QUARANTINE_TTL + DAY * (n + 1) for n in range(3)}
    written_by_the_release_before(rdb, keys.QUARANTINE_INDEX, expired, hashes=False)
    assert health.read(rdb, []).quarantined == 0  # already, before any write trims them
    (fresh,) = quarantine_some(redis_url, 1)
    assert [raw.decode() for raw in rdb.zrange(keys.QUARANTINE_INDEX, 0, -1)] == [fresh]
    assert health.read(rdb, []).quarantined == 1
    assert 0 < rdb.ttl(keys.QUARANTINE_INDEX) <= keys.QUARANTINE_TTL


def test_quarantine_keeps_the_newest_up_to_its_cap_and_drops_the_bodies_of_the_rest(
    rdb: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "QUARANTINE_MAX", 5)
    older = {f"q_before_{n}": 100.0 + n for n in range(4)}  # live entries the release before kept
    written_by_the_release_before(rdb, keys.QUARANTINE_INDEX, older, hashes=True)
    added = quarantine_some(redis_url, 7)
    kept = [raw.decode() for raw in rdb.zrange(keys.QUARANTINE_INDEX, 0, -1)]
    assert kept == added[-5:]
    assert not any(rdb.exists(keys.quarantined(item_id)) for item_id in [*older, *added[:2]])
    assert all(rdb.exists(keys.quarantined(item_id)) for item_id in kept)
    assert health.read(rdb, []).quarantined == 5
    assert [item.id for item in quarantine.list_items(rdb)] == added[:1:-1]


def test_the_quarantine_cap_is_ten_thousand() -> None:
    assert keys.QUARANTINE_MAX == 10_000  # the README says so


def test_opening_deliveries_drops_index_entries_past_the_event_ttl_and_the_index_expires(rdb: redis.Redis) -> None:
    stale = {f"old-{n}-sink": keys.EVENT_TTL + n * DAY + 60 for n in range(3)}
    recent = {"recent-sink": DAY}
    rdb.zadd(keys.DELIVERIES_INDEX, {item: time.time() - age for item, age in {**stale, **recent}.items()})
    with rdb.pipeline(transaction=True) as pipe:
        delivery.open_deliveries(pipe, event(1), ["log"])
        pipe.execute()
    ids = {raw.decode() for raw in rdb.zrange(keys.DELIVERIES_INDEX, 0, -1)}
    assert ids == {"recent-sink", delivery.delivery_id(event(1).id, "log")}
    assert 0 < rdb.ttl(keys.DELIVERIES_INDEX) <= keys.EVENT_TTL


@pytest.fixture
def refusing_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A webhook sink to a private address, which the guard refuses at once: every delivery is dead."""
    path = tmp_path / "workhooks.yaml"
    path.write_text("sinks:\n  erp: {type: webhook, url: 'http://127.0.0.1:9/x', retry_intervals: []}\n")
    monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
    settings.config.cache_clear()
    settings.sink.cache_clear()
    yield
    settings.config.cache_clear()
    settings.sink.cache_clear()


@pytest.mark.usefixtures("refusing_sink")
def test_a_dead_letter_drops_dead_index_entries_past_the_event_ttl(rdb: redis.Redis) -> None:
    rdb.zadd(
        keys.DEAD_INDEX, {"ancient-erp": time.time() - keys.EVENT_TTL - DAY, "last-week-erp": time.time() - 7 * DAY}
    )
    assert health.read(rdb, []).dead_letters == 1
    deliver_queued(rdb, event(2), ("erp",))
    assert rdb.hget(keys.delivery(delivery.delivery_id(event(2).id, "erp")), "status") == delivery.DEAD.encode()
    ids = {raw.decode() for raw in rdb.zrange(keys.DEAD_INDEX, 0, -1)}
    assert ids == {"last-week-erp", delivery.delivery_id(event(2).id, "erp")}
    assert 0 < rdb.ttl(keys.DEAD_INDEX) <= keys.EVENT_TTL
    assert health.read(rdb, []).dead_letters == 2


def test_a_mismatch_drops_mismatch_index_entries_past_the_event_ttl(rdb: redis.Redis) -> None:
    written_by_the_release_before(rdb, keys.MISMATCHES, {"evt_old": keys.EVENT_TTL + DAY, "evt_recent": DAY}, False)
    refused = Event("evt_new", "wordy-main", wordy.STATUS_CHANGED, "job/1", "2026-12-01T00:00:00Z", {"status": "c"})
    confirmation.record(rdb, refused, "aer")
    assert {raw.decode() for raw in rdb.zrange(keys.MISMATCHES, 0, -1)} == {"evt_recent", "evt_new"}
    assert 0 < rdb.ttl(keys.MISMATCHES) <= keys.EVENT_TTL
