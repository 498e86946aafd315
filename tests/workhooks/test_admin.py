"""The admin API, through the app `workhooks serve` runs, on a real Redis and a real RQ worker (burst)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from tests.servers import deliver_queued
from workers import settings
from workers.worker import Worker
from workhooks.app import create_app
from workhooks.config.loading import load_config
from workhooks.store import keys
from workhooks.store.keys import QUEUE

TOKEN = "admin-test-wordy-token-0123"
ADMIN = "admin-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {ADMIN}"}
WORDY = f"/hooks/wordy-main/{TOKEN}"


def config_text(tmp_path: Path, admin: bool = True) -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: swf-admin-key-0123456789}}
sinks:
  erp: {{type: webhook, url: "http://127.0.0.1:9/refused", allow_private: true, retry_intervals: []}}
routes:
  - to: [erp]
receiver:
  spool_dir: {tmp_path / "spool"}
{f"admin: {{token: {ADMIN}}}" if admin else ""}
"""


@pytest.fixture
def client(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    path = tmp_path / "workhooks.yaml"
    path.write_text(config_text(tmp_path))
    monkeypatch.setenv("WORKHOOKS_CONFIG", str(path))
    settings.config.cache_clear()
    settings.sink.cache_clear()
    with TestClient(create_app(load_config(), redis_url)) as test_client:
        yield test_client
    settings.config.cache_clear()
    settings.sink.cache_clear()


def status(job: int, previous: str = "acp", new: str = "aer") -> bytes:
    return json.dumps({"status": [previous, new], "job_id": job}).encode()


def post(client: TestClient, path: str, body: bytes, **headers: str) -> str:
    response = client.post(path, content=body, headers={"content-type": "application/json", **headers})
    assert response.status_code in (200, 202), response.text
    return str(response.json()["id"])


def run_worker(rdb: redis.Redis) -> None:
    Worker([QUEUE], connection=rdb).work(burst=True, logging_level="WARNING")
    deliver_queued(rdb)
    Worker([QUEUE], connection=rdb).work(burst=True, logging_level="WARNING")  # a dead letter's event


def test_admin_is_off_without_a_token(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "off.yaml"
    path.write_text(config_text(tmp_path, admin=False))
    with TestClient(create_app(load_config(str(path)), redis_url)) as off:
        assert off.get("/admin/").status_code == 404
        assert off.get("/admin/api/events", headers=AUTH).status_code == 404
        assert not any(path.startswith("/admin") for path in off.get("/openapi.json").json()["paths"])


def test_every_api_call_needs_the_token(client: TestClient) -> None:
    for headers in ({}, {"authorization": "Bearer wrong-token-0123456789ab"}, {"authorization": ADMIN}):
        refused = client.get("/admin/api/events", headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/admin/api/deliveries/x-erp/replay").status_code == 401
    assert client.get("/admin/api/events", headers=AUTH).status_code == 200
    page = client.get("/admin/")
    assert page.status_code == 200 and "workhooks console" in page.text and ADMIN not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/admin/api/events" in client.get("/openapi.json").json()["paths"]


def test_events_filter_and_page_with_a_cursor(client: TestClient) -> None:
    ids = [post(client, WORDY, status(job)) for job in range(1, 6)]
    swf = post(
        client,
        "/hooks/swf",
        json.dumps({"task": {"id": 9, "responses": [{"answer": "a", "id": "1"}]}}).encode(),
        **{"x-api-key": "swf-admin-key-0123456789"},
    )

    everything = client.get("/admin/api/events", headers=AUTH).json()
    assert [item["id"] for item in everything["items"]] == [swf, *reversed(ids)]  # newest first
    assert everything["next_cursor"] is None and everything["items"][0]["status"] == "queued"

    def page(cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"source": "wordy-main", "limit": 2, **({"cursor": cursor} if cursor else {})}
        return dict(client.get("/admin/api/events", params=params, headers=AUTH).json())

    first = page()
    second = page(first["next_cursor"])
    post(client, WORDY, status(99))  # arrives while paging: must not shift the pages
    third = page(second["next_cursor"])
    paged = [item["id"] for page in (first, second, third) for item in page["items"]]
    assert paged == list(reversed(ids)) and third["next_cursor"] is None

    def ids_for(**params: str) -> list[str]:
        return [item["id"] for item in client.get("/admin/api/events", params=params, headers=AUTH).json()["items"]]

    assert ids_for(type="sharedworkforce.*") == [swf]
    assert ids_for(subject="job/3") == [ids[2]]
    assert ids_for(phase="in_progress", source="swf") == []
    for bad in ({"phase": "nonsense"}, {"status": "lost"}, {"limit": "many"}, {"cursor": "garbage"}):
        assert client.get("/admin/api/events", params=bad, headers=AUTH).status_code == 400


def test_event_detail_dead_letter_replay_and_health(client: TestClient, rdb: redis.Redis) -> None:
    event_id = post(client, WORDY, status(7))
    run_worker(rdb)  # the sink refuses connections and has no retries: a dead letter

    detail = client.get(f"/admin/api/events/{event_id}", headers=AUTH).json()
    assert detail["event"]["subject"] == "job/7" and detail["state"]["status"] == "aer"
    assert json.loads(detail["raw"]["body"]) == {"status": ["acp", "aer"], "job_id": 7}
    assert [d["status"] for d in detail["deliveries"]] == ["dead"]
    assert [a["outcome"] for a in detail["attempts"]] == ["failed"]
    assert TOKEN not in json.dumps(detail)
    assert client.get("/admin/api/events/evt_nope", headers=AUTH).status_code == 404
    assert client.get("/admin/api/state/wordy-main/job/7", headers=AUTH).json()["status"] == "aer"

    dead = client.get("/admin/api/dead-letters", headers=AUTH).json()["items"]
    assert [d["id"] for d in dead] == [f"{event_id}-erp"]
    listed = client.get("/admin/api/events", params={"status": "dead"}, headers=AUTH).json()["items"]
    assert [item["id"] for item in listed] == [event_id]
    health = client.get("/admin/api/health", headers=AUTH).json()
    assert health["sinks"] == [
        {"name": "erp", "type": "webhook", "delivered": 0, "failed": 0, "dead": 1, "state": "closed", "held": 0,
         "in_flight": 0}
    ]  # fmt: skip
    assert health["dead_letters"] == 1 and health["queue_depth"] == 0

    paused = client.post("/admin/api/sinks/erp/pause", json={"reason": "ERP maintenance until 14:00"}, headers=AUTH)
    assert (paused.status_code, paused.json()) == (200, {"outcome": "paused"})
    (listed_sink,) = client.get("/admin/api/sinks", headers=AUTH).json()["items"]
    assert (listed_sink["state"], listed_sink["paused_reason"]) == ("paused", "ERP maintenance until 14:00")
    assert client.post("/admin/api/sinks/nope/pause", headers=AUTH).status_code == 404
    assert client.post("/admin/api/sinks/erp/pause", content=b"{", headers=AUTH).status_code == 400
    assert client.post("/admin/api/sinks/erp/pause", json={"reason": 5}, headers=AUTH).status_code == 400
    replayed = client.post(f"/admin/api/deliveries/{event_id}-erp/replay", headers=AUTH)
    assert (replayed.status_code, replayed.json()) == (202, {"outcome": "queued"})
    again = client.post(f"/admin/api/deliveries/{event_id}-erp/replay", headers=AUTH)
    assert (again.status_code, again.json()) == (409, {"outcome": "already pending"})
    assert client.post("/admin/api/deliveries/nothing-erp/replay", headers=AUTH).status_code == 404
    run_worker(rdb)  # paused: the replayed delivery waits, no attempt made
    assert [a["outcome"] for a in client.get(f"/admin/api/events/{event_id}", headers=AUTH).json()["attempts"]] == [
        "failed"
    ]
    assert client.get("/admin/api/sinks", headers=AUTH).json()["items"][0]["held"] == 1
    resumed = client.post("/admin/api/sinks/erp/resume", headers=AUTH)
    assert (resumed.status_code, resumed.json()) == (200, {"outcome": "resumed"})
    assert client.post("/admin/api/sinks/erp/resume", headers=AUTH).json() == {"outcome": "not paused"}
    run_worker(rdb)  # resumed: attempted again (and dead again: the sink still refuses)
    assert len(client.get(f"/admin/api/events/{event_id}", headers=AUTH).json()["attempts"]) == 2
    assert [d["attempts"] for d in client.get("/admin/api/dead-letters", headers=AUTH).json()["items"]] == [2]
    rdb.delete(keys.QUEUE_KEY)
    post(client, WORDY, status(8))
    post(client, WORDY, status(9))  # two events in the inbox, one drain job for them
    assert client.get("/admin/api/health", headers=AUTH).json()["queue_depth"] == 3


def test_quarantine_list_and_replay(client: TestClient) -> None:
    response = client.post(WORDY, content=b'{"status": ["acp", ["zzz"]], "job_id": 1}',
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 400
    held = client.get("/admin/api/quarantine", headers=AUTH).json()["items"]
    assert len(held) == 1 and held[0]["source"] == "wordy-main" and "zzz" in held[0]["body"]
    replayed = client.post(f"/admin/api/quarantine/{held[0]['id']}/replay", headers=AUTH)
    assert replayed.status_code == 409 and "still cannot be parsed" in replayed.json()["outcome"]
    assert client.post("/admin/api/quarantine/nope/replay", headers=AUTH).status_code == 404
