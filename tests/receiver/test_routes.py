"""The receiver's answers, through the real app and a real Redis (the session's private server)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from receiver.app import create_app
from tests.conftest import fixture_bytes
from workhooks.config.loading import parse_config
from workhooks.config.schema import Config
from workhooks.store import inbox, keys

TOKEN = "wordy-token-0123456789abcdef"
KEY = "acdc30b2-14c5-46ee-ba35-11d50edc65ec"
VENDOR_JSON = "application/vnd.com.sharedworkforce.text+json"
WORDY_URL = f"/hooks/wordy-main/{TOKEN}"

CONFIG_TEXT = f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
sinks:
  console: {{type: log}}
routes:
  - to: [console]
receiver:
  max_body_bytes: 4096
  spool_dir: SPOOL
"""


def make_config(spool: Path) -> Config:
    return parse_config(CONFIG_TEXT.replace("SPOOL", str(spool)), {})


@pytest.fixture
def client(redis_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_config(tmp_path / "spool"), redis_url)) as test_client:
        yield test_client


def post(
    client: TestClient, url: str, body: bytes, content_type: str | None = "application/json", **headers: str
) -> Any:
    if content_type:
        headers["content-type"] = content_type
    with structlog.testing.capture_logs() as logs:
        response = client.post(url, content=body, headers=headers)
    requests = [line for line in logs if line["event"] == "request"]
    assert len(requests) == 1, logs
    response.log = requests[0]
    return response


def queued(rdb: redis.Redis) -> list[bytes]:
    """The events waiting in the inbox for a drain job."""
    return list(rdb.lrange(keys.INBOX, 0, -1))


def test_wordy_status_is_accepted_stored_and_queued(client: TestClient, rdb: redis.Redis) -> None:
    response = post(client, WORDY_URL, fixture_bytes("wordy", "status_acp_aer.json"))
    assert response.status_code == 202
    event_id = response.json()["id"]
    assert queued(rdb) == [event_id.encode()]
    assert rdb.exists(keys.event(event_id), keys.raw(event_id)) == 2
    assert rdb.lrange(keys.QUEUE_KEY, 0, -1) == [f"drain-{event_id}".encode()]  # one drain job
    assert response.log["outcome"] == "accepted"
    assert response.log["route"] == "/hooks/{source}/{token}"
    assert TOKEN not in str(response.log)


def test_the_same_callback_twice_is_a_duplicate_queued_once(client: TestClient, rdb: redis.Redis) -> None:
    first = post(client, WORDY_URL, fixture_bytes("wordy", "status_acp_aer.json"))
    again = post(client, WORDY_URL, fixture_bytes("wordy", "status_acp_aer.form"), "application/x-www-form-urlencoded")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert len(queued(rdb)) == 1


@pytest.mark.parametrize(
    ("url", "body", "headers", "status", "reason"),
    [
        ("/hooks/nope/" + TOKEN, b"{}", {}, 404, "unknown source"),
        ("/hooks/swf/" + TOKEN, b"{}", {}, 404, "unknown source"),
        ("/hooks/wordy-main", b"{}", {}, 404, "unknown source"),
        ("/hooks/wordy-main/wrong-token-0123456789", b"{}", {}, 401, "bad token"),
        (WORDY_URL, b"<job/>", {"content-type": "text/xml"}, 415, "JSON or form"),
        (WORDY_URL, b"{" + b" " * 5000 + b"}", {}, 413, "size limit"),
        ("/hooks/swf", b"{}", {"x-api-key": "wrong"}, 401, "bad X-API-Key"),
        ("/hooks/swf", b"{}", {"x-api-key": "cl\u00e9".encode()}, 401, "bad X-API-Key"),
        ("/hooks/swf", b'{"task": {"id": 1, "responses": [{"answer": "a"}]}}', {}, 401, "no API key"),
        ("/hooks/swf", b'{"api_key": "nope", "task": {"id": 1}}', {}, 401, "bad api_key"),
        ("/hooks/swf", b"{not json", {}, 401, "no X-API-Key and the body cannot be read"),
        ("/hooks/swf", b"a=b", {"content-type": "text/plain", "x-api-key": KEY}, 415, "JSON or XML"),
    ],
)
def test_refusals_answer_their_code_log_why_and_queue_nothing(
    client: TestClient, rdb: redis.Redis, url: str, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    headers = {"content-type": "application/json", **headers}
    with structlog.testing.capture_logs() as logs:
        response = client.post(url, content=body, headers=headers)
    assert response.status_code == status
    line = next(line for line in logs if line["event"] == "request")
    assert reason in line["reason"]
    assert reason in response.json()["error"]
    assert queued(rdb) == []
    assert rdb.zcard(keys.QUARANTINE_INDEX) == 0


def test_a_declared_body_over_the_limit_is_a_413_before_any_credential_is_looked_at(
    client: TestClient, rdb: redis.Redis
) -> None:
    """The same answer whatever the token: a guesser learns nothing from a large body, and nobody's body is read."""
    for url in (WORDY_URL, "/hooks/wordy-main/wrong-token-0123456789", "/hooks/nope/x"):
        response = post(client, url, b"{" + b" " * 5000 + b"}")
        assert response.status_code == 413 and response.json() == {"error": "body over the size limit"}
        assert response.log["route"] == "/hooks/{source}/{token}" and TOKEN not in str(response.log)
    assert queued(rdb) == []


def test_another_method_on_a_callback_path_is_the_404_of_any_other_hooks_path(client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        with structlog.testing.capture_logs() as logs:
            response = client.request(method, WORDY_URL, content=b"{}")
        line = next(line for line in logs if line["event"] == "request")
        assert response.status_code == 404 and response.json() == {"error": "unknown source"}
        assert line["route"] == "/hooks/{rest:path}" and TOKEN not in str(line)


def test_body_limit_holds_for_chunked_bodies_without_content_length(client: TestClient, rdb: redis.Redis) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    response = client.post(WORDY_URL, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert queued(rdb) == []


@pytest.mark.parametrize(
    ("body", "content_type", "headers"),
    [
        (fixture_bytes("sharedworkforce", "callback.json"), VENDOR_JSON, {"x-api-key": KEY}),
        (fixture_bytes("sharedworkforce", "callback.json"), "application/json", {}),
        (fixture_bytes("sharedworkforce", "ruby_client_bare.json"), "application/json", {}),
        (fixture_bytes("sharedworkforce", "callback.xml"), "application/vnd.com.sharedworkforce.text+xml", {}),
        (fixture_bytes("sharedworkforce", "callback.xml"), "application/xml", {"x-api-key": KEY}),
    ],
)
def test_shared_workforce_variants_are_accepted(
    client: TestClient, rdb: redis.Redis, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    response = post(client, "/hooks/swf", body, content_type, **headers)
    assert response.status_code == 202, response.text
    event_id = response.json()["id"]
    stored = rdb.get(keys.event(event_id))
    raw = rdb.hget(keys.raw(event_id), "body")
    assert stored is not None and raw is not None
    assert KEY.encode() not in stored and KEY.encode() not in raw
    assert b"[REDACTED]" in raw


def test_unparseable_authenticated_body_is_quarantined_redacted(client: TestClient, rdb: redis.Redis) -> None:
    body = fixture_bytes("sharedworkforce", "docs_callback.txt")
    response = post(client, "/hooks/swf", body, VENDOR_JSON, **{"x-api-key": KEY})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    item_id = response.json()["quarantine_id"]
    assert response.log["quarantine_id"] == item_id
    stored = rdb.hgetall(keys.quarantined(item_id))
    assert stored[b"source"] == b"swf"
    assert KEY.encode() not in stored[b"body"]
    assert stored[b"body"] == body.replace(KEY.encode(), b"[REDACTED]")
    assert queued(rdb) == []


def test_a_wordy_status_the_document_does_not_name_is_accepted_as_unknown(client: TestClient, rdb: redis.Redis) -> None:
    response = post(client, WORDY_URL, b'{"status": ["aer", "xyz"], "job_id": 5}')
    assert response.status_code == 202 and rdb.zcard(keys.QUARANTINE_INDEX) == 0  # never quarantined, nor mapped
    stored = json.loads(rdb.get(keys.event(response.json()["id"])) or b"{}")
    assert (stored["data"]["status"], stored["data"]["status_label"]) == ("xyz", "unknown") and "phase" not in stored


def test_a_wordy_status_that_is_not_text_is_quarantined(client: TestClient, rdb: redis.Redis) -> None:
    response = post(client, WORDY_URL, b'{"status": ["aer", {"x": 1}], "job_id": 5}')
    assert response.status_code == 400
    assert rdb.zcard(keys.QUARANTINE_INDEX) == 1


def test_xml_attacks_are_400_and_never_read_files(client: TestClient, rdb: redis.Redis) -> None:
    for name in ("xxe.xml", "billion_laughs.xml"):
        response = post(
            client, "/hooks/swf", fixture_bytes("sharedworkforce", name), "application/xml", **{"x-api-key": KEY}
        )
        assert response.status_code == 400
        assert "XML refused" in response.json()["error"]
    assert b"root:" not in b"".join(v for k in rdb.keys("*") if rdb.type(k) == b"hash" for v in rdb.hvals(k))


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "redis": "ok", "spool_depth": 0}


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(name, labels): value}, parsed by prometheus-client's own parser."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}  # fmt: skip


def test_metrics_show_the_queue_a_worker_has_yet_to_drain_and_each_callback(client: TestClient) -> None:
    before = samples(client)
    accepted = ("workhooks_callbacks_total", (("outcome", "accepted"), ("source", "wordy-main")))
    unknown = ("workhooks_callbacks_total", (("outcome", "rejected"), ("source", "unknown")))
    post(client, WORDY_URL, fixture_bytes("wordy", "status_acp_aer.json"))
    post(client, "/hooks/swf", fixture_bytes("sharedworkforce", "callback.json"), VENDOR_JSON)
    post(client, "/hooks/made-up-by-a-scanner/x", b"{}")
    time.sleep(0.05)
    seen = samples(client)
    # two events in the inbox and the one drain job queued for them
    assert seen[("workhooks_redis_up", ())] == 1 and seen[("workhooks_queue_depth", ())] == 3
    assert 0 < seen[("workhooks_queue_oldest_age_seconds", ())] < 30
    assert seen[("workhooks_dead_letters", ())] == seen[("workhooks_spool_depth", ())] == 0
    assert seen[accepted] - before.get(accepted, 0) == 1
    assert seen[unknown] - before.get(unknown, 0) == 1  # an attacker's path never becomes a label
    assert not any(dict(labels).get("source") == "made-up-by-a-scanner" for _, labels in seen)


def test_redis_unreachable_spools_fsyncd_and_redacted(tmp_path: Path) -> None:
    dead = f"unix://{tmp_path}/no-redis.sock"
    with TestClient(create_app(make_config(tmp_path / "spool"), dead)) as client:
        first = post(client, WORDY_URL, fixture_bytes("wordy", "status_acp_aer.json"))
        second = post(client, "/hooks/swf", fixture_bytes("sharedworkforce", "callback.json"), VENDOR_JSON)
        assert (first.status_code, second.status_code) == (202, 202)
        assert first.log["outcome"] == "spooled"
        assert client.get("/readyz").json() == {"status": "degraded", "redis": "ConnectionError", "spool_depth": 2}
        seen = samples(client)
        assert (seen[("workhooks_redis_up", ())], seen[("workhooks_spool_depth", ())]) == (0, 2)
        assert ("workhooks_queue_depth", ()) not in seen
    spooled = b"".join(path.read_bytes() for path in (tmp_path / "spool").iterdir())
    assert spooled.count(b"\n") == 2
    assert first.json()["id"].encode() in spooled
    assert KEY.encode() not in spooled and TOKEN.encode() not in spooled


def test_redis_and_spool_unavailable_answers_503_with_retry_after(tmp_path: Path) -> None:
    dead = f"unix://{tmp_path}/no-redis.sock"
    (tmp_path / "file").write_text("not a folder")
    with TestClient(create_app(make_config(tmp_path / "file" / "spool"), dead)) as client:
        response = post(client, WORDY_URL, fixture_bytes("wordy", "status_acp_aer.json"))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.log["outcome"] == "unavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_rotation_both_current_tokens_and_keys_are_accepted(redis_url: str, tmp_path: Path) -> None:
    rotating = parse_config(
        f"""
sources:
  wordy-main: {{platform: wordy, tokens: [{TOKEN}, next-token-abcdefghijklmnop]}}
  swf: {{platform: sharedworkforce, api_keys: [{KEY}, next-key-0123456789abcdef]}}
receiver: {{spool_dir: {tmp_path}}}
""",
        {},
    )
    with TestClient(create_app(rotating, redis_url)) as client:
        for token in (TOKEN, "next-token-abcdefghijklmnop"):
            body = f'{{"username": "E", "message": "{token[:4]}", "job_id": 1}}'.encode()
            assert post(client, f"/hooks/wordy-main/{token}", body).status_code == 202
        assert post(client, "/hooks/wordy-main/retired-token-0123456789", b"{}").status_code == 401
        bare = b'{"id": 3, "responses": [{"answer": "x"}]}'
        assert post(client, "/hooks/swf", bare, **{"x-api-key": "next-key-0123456789abcdef"}).status_code == 202
        assert post(client, "/hooks/swf", bare, **{"x-api-key": "retired"}).status_code == 401


def test_failing_clients_are_rate_limited_without_slowing_others(redis_url: str, tmp_path: Path) -> None:
    limited = parse_config(
        CONFIG_TEXT.replace("SPOOL", str(tmp_path)).replace("  max_body_bytes: 4096", "  failure_limit: {burst: 3}"), {}
    )
    app = create_app(limited, redis_url)
    good = fixture_bytes("wordy", "message.json")
    with (
        TestClient(app, client=("203.0.113.7", 4000)) as guesser,
        TestClient(app, client=("198.51.100.1", 4000)) as wordy,
    ):
        codes = [post(guesser, f"/hooks/wordy-main/guess-{n:016d}", b"{}").status_code for n in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        refused = post(guesser, WORDY_URL, good)  # even a right token, from this address, waits
        assert refused.status_code == 429 and refused.log["reason"] == "too many failed requests"
        assert int(refused.headers["retry-after"]) >= 1
        assert post(wordy, WORDY_URL, good).status_code == 202  # another address is not slowed
        assert guesser.get("/healthz").status_code == 200


def test_the_stored_job_is_the_hash_rq_itself_builds(client: TestClient, rdb: redis.Redis) -> None:
    """The receiver writes RQ's job hash from a template: it must stay what RQ would write."""
    from rq.job import Job

    event_id = post(client, WORDY_URL, fixture_bytes("wordy", "status_acp_aer.json")).json()["id"]
    job_id = f"drain-{event_id}"
    stored = rdb.hgetall(keys.rq_job(job_id))
    reference = inbox.DrainJob().rq_job_hash(job_id)
    assert set(stored) == {field.encode() for field in reference}
    for field, value in reference.items():
        if field not in ("created_at", "enqueued_at"):
            expected = (
                value if isinstance(value, bytes) else value.encode() if isinstance(value, str) else str(value).encode()
            )
            assert stored[field.encode()] == expected, field
    job = Job.fetch(job_id, connection=rdb)
    assert (job.func_name, job.args, job.get_status()) == (keys.DRAIN_INBOX, (), "queued")
    assert job.retries_left == 6 and job.timeout == 20


def test_a_burst_queues_one_drain_job_until_a_worker_takes_it(client: TestClient, rdb: redis.Redis) -> None:
    ids = [post(client, WORDY_URL, b'{"status": ["acp", "aer"], "job_id": %d}' % job).json()["id"] for job in range(5)]
    assert queued(rdb) == [event_id.encode() for event_id in ids]
    assert rdb.lrange(keys.QUEUE_KEY, 0, -1) == [f"drain-{ids[0]}".encode()]
    rdb.delete(keys.DRAIN_QUEUED)  # what a worker starting the drain job does
    post(client, WORDY_URL, b'{"status": ["acp", "aer"], "job_id": 99}')
    assert rdb.llen(keys.QUEUE_KEY) == 2
