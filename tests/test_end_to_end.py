"""Callback in -> verified -> stored and queued -> worker -> delivered, through real processes."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from tests.conftest import fixture_bytes
from tests.servers import KEY, SECRET, TOKEN, Captured, CaptureServer, Service, wait_until
from workhooks.store import keys

pytestmark = pytest.mark.slow

VENDOR_JSON = "application/vnd.com.sharedworkforce.text+json"
SECRETS = [TOKEN, KEY, SECRET, SECRET.removeprefix("whsec_")]


def config_text(erp_url: str, extra_sinks: str = "", extra_routes: str = "", retry: str = "[1, 1, 1]") -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
sinks:
  erp:
    type: webhook
    url: {erp_url}
    secret: {SECRET}
    allow_private: true
    timeout: 2
    retry_intervals: {retry}
{extra_sinks}
routes:
  - match: {{source: wordy-main}}
    to: [erp]
  - match: {{type: "sharedworkforce.*"}}
    to: [erp]
{extra_routes}
"""


def verified(request: Captured) -> dict[str, object]:
    """What a receiver of our webhooks does: check the Standard Webhooks signature."""
    assert request.headers["content-type"] == "application/cloudevents+json"
    payload: dict[str, object] = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["id"] == request.headers["webhook-id"]
    return payload


def test_every_callback_shape_arrives_as_a_signed_cloudevent(
    start: Callable[[str], Service], sink_server: CaptureServer
) -> None:
    service = start(config_text(sink_server.url))
    answers = [
        service.wordy(fixture_bytes("wordy", "status_acp_aer.json")),
        service.wordy(fixture_bytes("wordy", "message.form"), "application/x-www-form-urlencoded"),
        service.wordy(b"status=aer&status=acr&job_id=123", "application/x-www-form-urlencoded"),
        service.post(
            "/hooks/swf", fixture_bytes("sharedworkforce", "callback.json"), VENDOR_JSON, **{"x-api-key": KEY}
        ),
        service.post(
            "/hooks/swf",
            fixture_bytes("sharedworkforce", "ruby_client_bare.json").replace(
                b"acdc30b2-14c5-46ee-ba35-11d50edc65ec", KEY.encode()
            ),
            "application/json",
        ),
        service.post(
            "/hooks/swf",
            fixture_bytes("sharedworkforce", "callback.xml")
            .replace(b"acdc30b2-14c5-46ee-ba35-11d50edc65ec", KEY.encode())
            .replace(b"501234", b"501235"),
            "application/xml",
        ),
    ]
    assert [answer.status_code for answer in answers[:3]] == [202, 202, 202]
    assert answers[3].status_code == 401  # the fixture's body key is not ours, though the header is
    assert [answer.status_code for answer in answers[4:]] == [202, 202]

    delivered = {str(payload["id"]): payload for payload in map(verified, sink_server.wait_for(5))}
    assert set(delivered) == {answer.json()["id"] for answer in answers if answer.status_code == 202}
    status = delivered[answers[0].json()["id"]]
    assert status["type"] == "wordy.job.status_changed"
    assert status["source"] == "/sources/wordy-main"
    assert status["subject"] == "job/123"
    assert status["phase"] == "in_progress"
    assert status["specversion"] == "1.0"
    assert status["data"] == {
        "job_id": 123,
        "previous_status": "acp",
        "previous_status_label": "awaiting customer payment",
        "status": "aer",
        "status_label": "awaiting editor response",
    }
    message = delivered[answers[1].json()["id"]]
    assert message["type"] == "wordy.job.message_added"
    assert message["data"] == {"job_id": 234, "author": "Editor X", "message": "I'm working on your job now."}
    bare = delivered[answers[4].json()["id"]]
    assert bare["subject"] == "task/601" and bare["phase"] == "completed"
    xml = delivered[answers[5].json()["id"]]
    assert xml["data"]["callback_params"] == {"article_id": 77, "draft": False, "note": None}  # type: ignore[index]


def test_duplicates_and_refusals_deliver_nothing_extra(
    start: Callable[[str], Service], sink_server: CaptureServer
) -> None:
    service = start(config_text(sink_server.url))
    status = fixture_bytes("wordy", "status_acp_aer.json")
    codes = [service.wordy(status).status_code for _ in range(3)]
    codes.append(
        service.wordy(fixture_bytes("wordy", "status_acp_aer.form"), "application/x-www-form-urlencoded").status_code
    )
    assert codes == [202, 200, 200, 200]
    refused = [
        service.post(f"/hooks/wordy-main/{TOKEN[:-1]}x", status).status_code,
        service.post("/hooks/ghost", status).status_code,
        service.post(f"/hooks/wordy-main/{TOKEN}", b"<a/>", "application/xml").status_code,
        service.post(f"/hooks/wordy-main/{TOKEN}", b" " * (1024 * 1024 + 1)).status_code,
        service.post(f"/hooks/wordy-main/{TOKEN}", b'{"status": ["acp"], "job_id": 1}').status_code,
        service.post(
            "/hooks/swf", fixture_bytes("sharedworkforce", "docs_callback.txt"), VENDOR_JSON, **{"x-api-key": KEY}
        ).status_code,
        service.post("/hooks/swf", b'{"task": {"id": 3, "responses": [{"answer": "a"}]}}').status_code,
    ]
    assert refused == [401, 404, 415, 413, 400, 400, 401]
    marker = service.wordy(fixture_bytes("wordy", "message.json"))
    assert marker.status_code == 202
    sink_server.wait_for(2)
    time.sleep(1.0)  # anything else queued would have been delivered by now
    ids = [verified(request)["id"] for request in sink_server.requests]
    assert sorted(ids) == sorted([marker.json()["id"], service.wordy(status).json()["id"]])


def test_out_of_order_statuses_keep_the_truthful_state(
    start: Callable[[str], Service], sink_server: CaptureServer, rdb: redis.Redis
) -> None:
    service = start(config_text(sink_server.url))
    for previous, new in [("aer", "acr"), ("awc", "acp"), ("acr", "c"), ("acp", "aer")]:
        assert service.wordy(json.dumps({"status": [previous, new], "job_id": 77}).encode()).status_code == 202
    assert len(sink_server.wait_for(4)) == 4
    state = json.loads(rdb.get(keys.state("wordy-main", "job/77")) or b"{}")
    assert state["status"] == "c"
    assert [(item["from"], item["to"], item["applied"]) for item in state["history"]] == [
        ("aer", "acr", True),
        ("awc", "acp", False),
        ("acr", "c", True),
        ("acp", "aer", False),
    ]


def test_a_sink_that_is_down_gets_the_event_after_retries(
    start: Callable[[str], Service], sink_server: CaptureServer, rdb: redis.Redis
) -> None:
    answers = iter([503, 500])
    sink_server.status = lambda request: next(answers, 200)
    service = start(config_text(sink_server.url))
    event_id = service.wordy(fixture_bytes("wordy", "status_acp_aer.json")).json()["id"]
    delivered = sink_server.wait_for(1, timeout=20)
    assert [verified(request)["id"] for request in delivered] == [event_id]
    attempts = [json.loads(item) for item in rdb.lrange(keys.attempts(event_id), 0, -1)]
    assert [(a["outcome"], a["status_code"]) for a in attempts] == [
        ("failed", 503),
        ("failed", 500),
        ("delivered", None),
    ]

    def metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = service.http.get("/metrics").text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip

    wait_until(lambda: ("workhooks_delivered_delay_seconds_count", (("sink", "erp"),)) in metrics(), what="metrics")
    seen = metrics()  # the workers' counters, served by the receiver from Redis
    assert (
        seen[("workhooks_events_processed_total", (("source", "wordy-main"), ("type", "wordy.job.status_changed")))]
        == 1
    )
    assert seen[("workhooks_deliveries_total", (("outcome", "failed"), ("sink", "erp")))] == 2
    assert seen[("workhooks_deliveries_total", (("outcome", "delivered"), ("sink", "erp")))] == 1
    assert seen[("workhooks_delivery_seconds_count", (("sink", "erp"),))] == 3
    assert 1 < seen[("workhooks_delivered_delay_seconds_sum", (("sink", "erp"),))] < 20  # two retries ~1 s apart
    assert seen[("workhooks_processing_delay_seconds_count", (("source", "wordy-main"),))] == 1
    assert seen[("workhooks_workers", ())] >= 1 and seen[("workhooks_queue_depth", ())] == 0


def test_a_failing_sink_does_not_delay_another(
    start: Callable[[str], Service], sink_server: CaptureServer, tmp_path: Path
) -> None:
    down = CaptureServer(status=503).start()
    try:
        extra = f"  down:\n    type: webhook\n    url: {down.url}\n    allow_private: true\n    retry_intervals: [30]\n"
        routes = "  - match: {source: wordy-main}\n    to: [down, erp]\n"
        service = start(config_text(sink_server.url, extra_sinks=extra, extra_routes=routes))
        started = time.monotonic()
        event_id = service.wordy(fixture_bytes("wordy", "status_acp_aer.json")).json()["id"]
        assert [verified(r)["id"] for r in sink_server.wait_for(1, timeout=10)] == [event_id]
        assert time.monotonic() - started < 10
    finally:
        down.stop()


def _redis_text(client: redis.Redis) -> bytes:
    """Every value in Redis, RQ's compressed job data unpacked, as one blob to search."""
    chunks: list[bytes] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        chunks.append(key)
        if kind == b"string":
            chunks.append(client.get(key) or b"")
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                chunks += [field, value]
                if field in (b"data", b"exc_info"):
                    chunks.append(zlib.decompress(value))
        elif kind == b"list":
            chunks += client.lrange(key, 0, -1)
        elif kind == b"set":
            chunks += list(client.smembers(key))
        elif kind == b"zset":
            chunks += client.zrange(key, 0, -1)
        elif kind == b"stream":
            chunks += [repr(entry).encode() for entry in client.xrange(key)]
    return b"\n".join(chunks)


def test_no_secret_is_written_anywhere(
    start: Callable[[str], Service], sink_server: CaptureServer, rdb: redis.Redis, redis_url: str
) -> None:
    service = start(config_text(sink_server.url))
    service.wordy(fixture_bytes("wordy", "status_acp_aer.json"))
    service.post(f"/hooks/wordy-main/{TOKEN}x", b"{}")
    echoed = json.dumps(
        {"api_key": KEY, "task": {"id": 8, "responses": [{"answer": KEY}], "callback_params": {"k": KEY}}}
    )
    service.post("/hooks/swf", echoed.encode(), VENDOR_JSON, **{"x-api-key": KEY})
    service.post(
        "/hooks/swf", b"<task><api_key>" + KEY.encode() + b"</api_key><id>oops", "application/xml", **{"x-api-key": KEY}
    )
    delivered = sink_server.wait_for(2)
    assert len(delivered) == 2
    rdb.bgrewriteaof()
    time.sleep(0.5)
    aof = b"".join(
        path.read_bytes() for path in Path(redis_url.removeprefix("unix://")).parent.rglob("*.aof*") if path.is_file()
    )
    places = {
        "logs": service.logs().encode(),
        "redis": _redis_text(rdb),
        "aof": aof,
        "deliveries": b"\n".join(request.body + json.dumps(request.headers).encode() for request in delivered),
    }
    for secret in SECRETS:
        for where, text in places.items():
            assert secret.encode() not in text, f"{secret[:6]}... found in {where}"
    assert b"[REDACTED]" in places["deliveries"]
