"""A sink that cannot be built fails its own deliveries, in-process against a real Redis; the others deliver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import TOKEN, deliver_queued
from workers import delivery, processing, settings, sinks
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import keys
from workhooks.store.ingest import Ingest, prepare

BROKEN_KEY = "broken-key-material-0123456789"


def unbuildable(settings: Any, name: str) -> sinks.Sink:
    raise ValueError(f"cannot use {BROKEN_KEY}")  # as Webhook() did with a key that was not base64


@pytest.fixture
def log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``broken`` (a webhook whose construction raises) routed before ``archive`` (a log sink)."""
    archive = tmp_path / "events.jsonl"
    path = tmp_path / "workhooks.yaml"
    path.write_text(f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  broken: {{type: webhook, url: "https://erp.example/x", headers: {{X-Key: {BROKEN_KEY}}}}}
  archive: {{type: log, path: "{archive}"}}
routes:
  - to: [broken, archive]
""")
    monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
    monkeypatch.setitem(sinks.SINK_TYPES, "webhook", unbuildable)
    settings.config.cache_clear()
    settings.sink.cache_clear()
    yield archive
    settings.config.cache_clear()
    settings.sink.cache_clear()


def test_a_sink_that_cannot_be_built_is_dead_with_the_reason_while_the_log_sink_delivers(
    rdb: redis.Redis, log_path: Path
) -> None:
    body = b'{"status": ["acp", "aer"], "job_id": 7}'
    event = Event.from_callback("wordy-main", wordy.parse(body, "application/json"))
    event_id = Ingest().submit_sync(rdb, prepare(event, "application/json", body)).id

    chosen = processing.process(rdb, event_id, rdb.get(keys.event(event_id)))
    deliver_queued(rdb)

    assert chosen == ["broken", "archive"]
    assert [json.loads(line)["id"] for line in log_path.read_text().splitlines()] == [event_id]
    archived, broken = delivery.get(rdb, f"{event_id}-archive"), delivery.get(rdb, f"{event_id}-broken")
    assert archived is not None and archived.status == delivery.DELIVERED
    assert broken is not None and broken.status == delivery.DEAD and broken.attempts == 1
    assert "sink broken cannot be built: ValueError" in broken.last_error
    assert BROKEN_KEY not in broken.last_error  # the reason is redacted like every other error
    assert [raw.decode() for raw in rdb.zrange(keys.DEAD_INDEX, 0, -1)] == [f"{event_id}-broken"]
