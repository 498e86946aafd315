"""Hostile input: every attack's answer and bound, through the real app in process (structure, not time),
and over raw sockets against a real uvicorn (marked slow: bounded memory and time, clear 4xx, nothing queued)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from receiver import app as receiver_app
from receiver import metrics
from tests.conftest import fixture_bytes
from tests.servers import KEY, TOKEN, Service
from workhooks.app import create_app
from workhooks.config.loading import parse_config
from workhooks.core.exceptions import ParseError
from workhooks.platforms.sharedworkforce import callback as swf
from workhooks.store import keys

LIMIT = 1024 * 1024
ADMIN = "admin-token-0123456789abcdef"
WORDY = f"/hooks/wordy-main/{TOKEN}"


def config(spool: Path) -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
sinks: {{console: {{type: log}}}}
routes: [{{to: [console]}}]
receiver:
  max_body_bytes: {LIMIT}
  spool_dir: {spool}
  failure_limit: {{per_minute: 0}}
"""


def raw(port: int, head: bytes, body_chunks: list[bytes], timeout: float = 10) -> bytes:
    """Send a hand-made request; return whatever the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    return answer


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.slow
def test_lying_and_chunked_bodies_cannot_make_us_buffer_past_the_limit(
    start: Callable[[str], Service], tmp_path: Path, rdb: redis.Redis, figures: list[str]
) -> None:
    service = start(config(tmp_path / "spool"))
    path = f"/hooks/wordy-main/{TOKEN}".encode()
    pid = service.web.process.pid
    before = rss_kb(pid)

    declared_huge = raw(service.port, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1073741824\r\n\r\n", [b"{}"])  # fmt: skip
    assert status_of(declared_huge) == 413

    chunk = b"x" * 65536
    chunked = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 160 + [b"0\r\n\r\n"]  # 10 MiB, no Content-Length
    over = raw(service.port, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n", chunked)  # fmt: skip
    assert status_of(over) == 413

    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 10\r\n\r\n" + b'{"job_id":')  # fmt: skip
        understated = sock.recv(65536)
        with contextlib.suppress(OSError):  # whatever follows is not part of that request
            sock.sendall(b"1" * 5_000_000)
    assert status_of(understated) == 400  # only the 10 declared bytes were read: not JSON

    grown = rss_kb(pid) - before
    assert grown < 20_000, f"receiver grew {grown} kB"
    assert rdb.llen(keys.INBOX) == 0
    figures.append(f"1 GiB declared, 10 MiB chunked, 5 MB past Content-Length: 413/413/400, receiver RSS +{grown} kB")


@pytest.mark.slow
def test_xml_bombs_are_refused_fast_with_flat_memory(
    start: Callable[[str], Service], tmp_path: Path, rdb: redis.Redis, figures: list[str]
) -> None:
    service = start(config(tmp_path / "spool"))
    pid = service.web.process.pid
    bombs = [
        fixture_bytes("sharedworkforce", name) for name in ("billion_laughs.xml", "quadratic_blowup.xml", "xxe.xml")
    ]
    before, slowest = rss_kb(pid), 0.0
    for _ in range(20):
        for bomb in bombs:
            started = time.monotonic()
            answer = service.post("/hooks/swf", bomb, "application/xml", **{"x-api-key": KEY})
            slowest = max(slowest, time.monotonic() - started)
            assert answer.status_code == 400 and "XML refused" in answer.json()["error"]
    grown = rss_kb(pid) - before
    assert grown < 20_000 and slowest < 1.0
    assert rdb.llen(keys.INBOX) == 0
    assert b"root:" not in b"".join(rdb.hget(k, "body") or b"" for k in rdb.keys(keys.quarantined("*")))
    figures.append(f"60 XML bombs (billion laughs, quadratic blow-up, XXE): all 400, slowest {slowest * 1000:.0f} ms, "
                   f"receiver RSS +{grown} kB")  # fmt: skip


# In process: the receiver and admin app on the session's private Redis. Structure, not time.


def in_process_text(spool: Path) -> str:
    """The same configuration, with the admin API on."""
    return config(spool) + f"admin: {{token: {ADMIN}}}\n"


SWF_TASK = {"id": 7, "responses": [{"answer": "yes", "id": "1"}]}


def in_process_config(spool: Path) -> Any:
    return parse_config(in_process_text(spool), {})


@pytest.fixture
def client(redis_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(in_process_config(tmp_path / "spool"), redis_url)) as test_client:
        yield test_client


def answer(client: TestClient, url: str, body: bytes, content_type: str = "application/json", **kw: Any) -> Any:
    """POST and return (response, the request's log line)."""
    with structlog.testing.capture_logs() as logs:
        response = client.post(url, content=body, headers={"content-type": content_type, **kw.pop("headers", {})})
    lines = [line for line in logs if line["event"] == "request"]
    assert len(lines) == 1, logs
    return response, lines[0]


def quarantined(rdb: redis.Redis) -> int:
    return int(rdb.zcard(keys.QUARANTINE_INDEX))


# 1. Quadratic XML: a linear reader, capped in depth and element count, refusing before the work grows.


def siblings(count: int, inner: bytes = b"<a>x</a>") -> bytes:
    """The issue's attack: one <task> and ``count`` repeated children without type="array"."""
    return b"<task>" + inner * count + b"</task>"


def valid_task_xml(elements: int) -> bytes:
    """A real task padded with empty siblings to exactly ``elements`` elements."""
    head = b'<task><id type="integer">7</id><responses type="array"><response><answer>yes</answer></response>'
    return head + b"</responses>" + b"<pad/>" * (elements - 5) + b"</task>"


def reader_operations(body: bytes) -> int:
    """Bytecodes executed in the XML reader's module while it reads ``body``: a count, deterministic."""
    count = 0

    def local(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += event == "opcode"
        return local

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename != swf.__file__:
            return None
        frame.f_trace_opcodes = True
        return local

    sys.settrace(trace)
    try:
        with contextlib.suppress(ParseError):
            swf.decode(body, "application/xml")
    finally:
        sys.settrace(None)
    return count


def test_xml_reading_work_grows_linearly_and_stops_at_the_element_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    one, two, three = (reader_operations(siblings(n)) for n in (500, 1000, 1500))
    assert (three - two) == pytest.approx(two - one, rel=0.01)  # every further element costs the same
    assert two / one < 2.05
    # Past the cap nothing more is read: a 1 MiB body costs what cap + 1 elements cost.
    monkeypatch.setattr(swf, "MAX_XML_ELEMENTS", 100)
    capped, huge = reader_operations(siblings(100)), reader_operations(siblings(LIMIT // 8))
    assert huge == pytest.approx(capped, rel=0.01)
    # C-level copying is invisible to bytecode counts: the old reader rebuilt a list per repeated tag. Its
    # CPU time grew ~11x for 4x the siblings; a linear reader's grows ~4x (the lowest of five runs each).
    monkeypatch.setattr(swf, "MAX_XML_ELEMENTS", 10_000)

    def cpu(body: bytes) -> float:
        runs = []
        for _ in range(5):
            started = time.process_time()
            swf.decode(body, "application/xml")
            runs.append(time.process_time() - started)
        return min(runs)

    small, large = cpu(siblings(2000)), cpu(siblings(8000))
    assert large / max(small, 1e-6) < 8


def test_xml_past_the_element_or_depth_cap_is_a_400_and_unauthenticated_a_401(
    client: TestClient, rdb: redis.Redis
) -> None:
    key = {"x-api-key": KEY}
    at_cap, _ = answer(client, "/hooks/swf", valid_task_xml(swf.MAX_XML_ELEMENTS), "application/xml", headers=key)
    assert at_cap.status_code == 202, at_cap.text
    for body, reason in [
        (valid_task_xml(swf.MAX_XML_ELEMENTS + 1), f"more than {swf.MAX_XML_ELEMENTS} elements"),
        (siblings((LIMIT - 13) // 4, b"<a/>"), f"more than {swf.MAX_XML_ELEMENTS} elements"),  # ~260k siblings in 1 MiB
        (b"<task>" + b"<a>" * swf.MAX_XML_DEPTH + b"</a>" * swf.MAX_XML_DEPTH + b"</task>", "nested deeper"),
    ]:
        refused, line = answer(client, "/hooks/swf", body, "application/xml", headers=key)
        assert (refused.status_code, line["reason"]) == (400, refused.json()["error"])
        assert reason in line["reason"] and refused.json()["quarantine_id"]
        anonymous, line = answer(client, "/hooks/swf", body, "application/xml")
        assert anonymous.status_code == 401 and reason in line["reason"]
    assert quarantined(rdb) == 3  # the authenticated ones only


def test_xml_entities_stay_refused_by_the_new_reader() -> None:
    for name in ("billion_laughs.xml", "quadratic_blowup.xml", "xxe.xml"):
        with pytest.raises(ParseError, match="XML refused"):
            swf.decode(fixture_bytes("sharedworkforce", name), "application/xml")
    internal = b'<?xml version="1.0"?><!DOCTYPE task [<!ENTITY e "x">]><task>&e;</task>'
    with pytest.raises(ParseError, match="XML refused"):
        swf.decode(internal, "application/xml")


# 4. No 500 for any body: each parse failure a 400 (quarantined) when authenticated, a 401 when not, and why.

HUGE = b"9" * 4400
UNREADABLE_WORDY = [
    (b'{"job_id": ' + HUGE + b', "message": "x"}', "application/json", "more than 4300 digits"),
    ('{"job_id": "²", "message": "x"}'.encode(), "application/json", "job_id"),
    ('{"job_id": "١٢٣", "message": "x"}'.encode(), "application/json", "job_id"),  # int() would read 123
    (b'{"job_id": "' + b"9" * 5000 + b'", "message": "x"}', "application/json", "job_id"),
    (b'{"job_id": 1, "message": "\\ud800"}', "application/json", "lone surrogate"),
    (b'{"job_id": 1, "message": "\xed\xa0\x80"}', "application/json", "lone surrogate"),  # json.loads passes it
    (b'{"job_id": 1, "\\udfff": 2, "message": "x"}', "application/json", "lone surrogate"),
    (b'{"job_id": 1, "message": NaN}', "application/json", "NaN is not JSON"),
    (b'{"job_id": 1, "message": 1e999}', "application/json", "finite"),
    (b"job_id=%C2%B2&message=x", "application/x-www-form-urlencoded", "job_id"),
    (b"job_id=" + b"9" * 5000 + b"&message=x", "application/x-www-form-urlencoded", "job_id"),
]
UNREADABLE_SWF = [
    (b'{"task": {"id": ' + HUGE + b', "responses": [{"answer": "a"}]}}', "application/json", "4300 digits"),
    (b'{"task": {"id": 1, "responses": [{"answer": "\\ud800"}]}}', "application/json", "lone surrogate"),
    (b'<task><id type="integer">' + b"9" * 5000 + b"</id></task>", "application/xml", "typed integer"),
    ('<task><id type="integer">²</id></task>'.encode(), "application/xml", "typed integer"),
]
UNUSABLE_SWF = [  # read, but not a task we can take
    (b'{"task": {"id": "' + b"9" * 5000 + b'", "responses": [{"answer": "a"}]}}', "application/json", "task.id"),
    (b'{"task": {"id": ' + b"9" * 4000 + b', "responses": [{"answer": "a"}]}}', "application/json", "task.id"),
]


@pytest.mark.parametrize(("body", "content_type", "reason"), UNREADABLE_WORDY)
def test_wordy_bodies_that_used_to_500_are_quarantined_400s(
    client: TestClient, rdb: redis.Redis, body: bytes, content_type: str, reason: str
) -> None:
    response, line = answer(client, WORDY, body, content_type)
    assert response.status_code == 400 and reason in line["reason"] and line["reason"] == response.json()["error"]
    assert quarantined(rdb) == 1 and rdb.llen(keys.INBOX) == 0
    assert response.json()["quarantine_id"] == line["quarantine_id"]


@pytest.mark.parametrize(("body", "content_type", "reason"), UNREADABLE_SWF + UNUSABLE_SWF)
def test_shared_workforce_bodies_that_used_to_500_are_400_with_a_key_401_without(
    client: TestClient, rdb: redis.Redis, body: bytes, content_type: str, reason: str
) -> None:
    response, line = answer(client, "/hooks/swf", body, content_type, headers={"x-api-key": KEY})
    assert response.status_code == 400 and reason in line["reason"] and quarantined(rdb) == 1
    anonymous, line = answer(client, "/hooks/swf", body, content_type)
    assert anonymous.status_code == 401 and line["reason"]
    if (body, content_type, reason) in UNREADABLE_SWF:
        assert reason in line["reason"]  # "no X-API-Key and the body cannot be read (<why>)"
    assert quarantined(rdb) == 1 and rdb.llen(keys.INBOX) == 0


# 7. A client that disconnects mid-body: client_disconnected (499), never a 500 with a traceback.


@pytest.mark.parametrize("path", [WORDY, "/hooks/swf"])
def test_a_client_disconnecting_mid_body_is_logged_client_disconnected_not_a_500(tmp_path: Path, path: str) -> None:
    app = receiver_app.create_app(in_process_config(tmp_path / "spool"), f"unix://{tmp_path}/unused.sock")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096"),
                         (b"x-api-key", KEY.encode())],
             "client": ("198.51.100.9", 5000), "server": ("testserver", 80)}  # fmt: skip
    arriving = [
        {"type": "http.request", "body": b'{"job_id": 1, "mess', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return arriving.pop(0) if arriving else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    source = "wordy-main" if path == WORDY else "swf"

    def counted(outcome: str) -> float:
        value = metrics.RECEIVER.get_sample_value("workhooks_callbacks_total", {"source": source, "outcome": outcome})
        return value or 0.0

    before = counted("client_disconnected"), counted("http_500")
    with structlog.testing.capture_logs() as logs:
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]  # raises if anything escaped to a 500
    (line,) = [line for line in logs if line["event"] == "request"]
    assert (line["status"], line["outcome"]) == (499, "client_disconnected")
    assert not any("exc_info" in entry or entry.get("log_level") == "error" for entry in logs)
    assert sent[0]["status"] == 499
    assert (counted("client_disconnected"), counted("http_500")) == (before[0] + 1, before[1])


@pytest.mark.parametrize("length", ["\u00b2", "-1", " 12", "1e3", ""])
def test_a_content_length_that_is_not_digits_is_never_a_500(tmp_path: Path, length: str) -> None:
    """uvicorn's parser refuses these before the app; another server might pass them on (``\u00b2`` is a
    digit to ``str.isdigit``, not to ``int``)."""
    app = receiver_app.create_app(in_process_config(tmp_path / "spool"), f"unix://{tmp_path}/unused.sock")
    path = "/hooks/wordy-main/wrong-token-0123456789"  # refused before Redis is needed
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", length.encode("latin-1"))],
             "client": ("198.51.100.9", 5000), "server": ("testserver", 80)}  # fmt: skip
    arriving = [{"type": "http.request", "body": b"{not json", "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return arriving.pop(0) if arriving else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]  # raises if anything escaped to a 500
    assert sent[0]["status"] == 401


# 9. Every credential present is checked: repeated X-API-Key headers, both body keys, one Authorization.


@pytest.mark.parametrize(
    ("header_keys", "status"),
    [([KEY, "wrong-key-0123456789abcdef"], 401), (["wrong-key-0123456789abcdef", KEY], 401), ([KEY, KEY], 202)],
)
def test_every_x_api_key_header_is_checked(client: TestClient, header_keys: list[str], status: int) -> None:
    body = json.dumps({"task": {**SWF_TASK, "id": hash(tuple(header_keys)) % 1000}}).encode()
    response = client.post(
        "/hooks/swf",
        content=body,
        headers=[("content-type", "application/json")] + [("x-api-key", k) for k in header_keys],
    )
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("top", "nested", "status", "reason"),
    [
        (KEY, "wrong-key-0123456789abcdef", 401, "differ"),
        ("wrong-key-0123456789abcdef", KEY, 401, "differ"),
        (None, "wrong-key-0123456789abcdef", 401, "bad api_key"),
        (KEY, KEY, 202, None),
    ],
)
def test_a_nested_task_api_key_is_checked_beside_the_top_level_one(
    client: TestClient, rdb: redis.Redis, top: str | None, nested: str, status: int, reason: str | None
) -> None:
    document: dict[str, Any] = {"task": {**SWF_TASK, "api_key": nested}}
    if top is not None:
        document["api_key"] = top
    for headers in ({}, {"x-api-key": KEY}):  # a right header does not excuse a wrong key in the body
        response, line = answer(client, "/hooks/swf", json.dumps(document).encode(), headers=headers)
        assert response.status_code in ((status,) if status == 401 else (200, 202)), response.text
        if reason:
            assert reason in line["reason"]
    assert quarantined(rdb) == 0


def test_admin_takes_exactly_one_authorization_header(client: TestClient) -> None:
    good, bad = f"Bearer {ADMIN}", "Bearer wrong-token-0123456789abcdef"
    assert client.get("/admin/api/events", headers={"authorization": good}).status_code == 200
    for pair in ([good, bad], [bad, good], [good, good]):
        refused = client.get("/admin/api/events", headers=[("authorization", value) for value in pair])
        assert refused.status_code == 401


@pytest.mark.parametrize(
    "query", ["since=nan", "since=inf", "since=-inf", "cursor=nan:0", "cursor=inf:0", "cursor=1:%C2%B2",
              "cursor=1:" + "9" * 5000, "cursor=1:-1", "limit=%C2%B2"],
)  # fmt: skip
def test_admin_event_filters_that_are_not_finite_numbers_are_400(client: TestClient, query: str) -> None:
    response = client.get(f"/admin/api/events?{query}", headers={"authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 400 and response.json()["error"]


# Whatever arrives, no 5xx: JSON (huge integers, surrogates, NaN, deep nesting), forms, XML and bytes,
# with and without credentials; each refusal's log line says why.


class Raw(str):
    """JSON text written as it is: what json.dumps cannot produce (5,000-digit integers, 3,000 levels)."""


SURROGATES = st.sampled_from(["\ud800", "\udfff", "\udbff\udbff", "\udc80x"])
TRICKY = st.sampled_from(["²", "١٢٣", " 7 ", "-1", "0" * 25, "9" * 5000, "acp", "aer", "", KEY, TOKEN])
TEXT = st.text(max_size=12) | TRICKY | st.builds(lambda a, s: a + s, st.text(max_size=4), SURROGATES)
RAW = (
    st.integers(4290, 6000).map(lambda n: Raw("9" * n))
    | st.integers(60, 3000).map(lambda n: Raw("[" * n + "]" * n))
    | st.integers(60, 1500).map(lambda n: Raw('{"a":' * n + "1" + "}" * n))
    | st.sampled_from([Raw("1e999"), Raw("-1e999"), Raw("NaN"), Raw("-Infinity"), Raw("1" * 400 + ".5")])
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT | RAW,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
WORDY_DOCUMENTS = st.fixed_dictionaries(
    {}, optional={"job_id": VALUES | TRICKY, "status": st.lists(TEXT, max_size=3) | VALUES, "message": VALUES,
                  "username": VALUES}
)  # fmt: skip
RESPONSES = st.lists(st.fixed_dictionaries({}, optional={"answer": VALUES, "id": VALUES}), max_size=3) | VALUES
TASKS = st.fixed_dictionaries(
    {}, optional={"id": VALUES | TRICKY, "api_key": st.just(KEY) | VALUES, "title": VALUES, "callback_params": VALUES,
                  "responses": RESPONSES}
)  # fmt: skip
SWF_DOCUMENTS = st.fixed_dictionaries({}, optional={"api_key": st.just(KEY) | VALUES, "task": TASKS | VALUES}) | TASKS


def dump(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{dump(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(item) for item in value) + "]"
    return json.dumps(value)  # ASCII: lone surrogates as \ud800 escapes, NaN and Infinity as Python writes them


JSON_BODIES = (WORDY_DOCUMENTS | SWF_DOCUMENTS | VALUES).map(lambda value: dump(value).encode())
FORM_TEXT = st.text(max_size=12) | TRICKY.filter(lambda text: len(text) < 100)
FORM_BODIES = st.lists(
    st.tuples(
        st.sampled_from(["job_id", "status", "status[]", "message", "username", "api_key"]) | FORM_TEXT, FORM_TEXT
    ),
    max_size=6,
).map(lambda pairs: urlencode(pairs).encode()) | st.sampled_from(
    [b"message=%ED%A0%80&job_id=1", b"job_id=%C2%B2&message=x", b"job_id=" + b"9" * 5000, b"a=%zz&&=", b"&" * 2000]
)
XML_TEXT = (st.text(max_size=10) | TRICKY).map(
    lambda text: text.replace("&", "&amp;").replace("<", "&lt;").encode("utf-8", "surrogatepass")
)
TAGS = st.sampled_from([b"task", b"id", b"responses", b"response", b"answer", b"api-key", b"api_key", b"a"])
ATTRIBUTES = st.sampled_from([b"", b' type="array"', b' type="integer"', b' type="boolean"', b' nil="true"'])
XML_TREES = st.recursive(
    XML_TEXT,
    lambda inner: st.builds(
        lambda tag, attributes, children: b"<" + tag + attributes + b">" + b"".join(children) + b"</" + tag + b">",
        TAGS, ATTRIBUTES, st.lists(inner, max_size=4),
    ),
    max_leaves=15,
)  # fmt: skip
XML_BODIES = (
    XML_TREES
    | st.integers(0, 12_000).map(lambda n: siblings(n, b"<a/>"))
    | st.integers(1, 200).map(lambda n: b"<task>" + b"<a>" * n + b"</a>" * n + b"</task>")
    | st.sampled_from(
        [fixture_bytes("sharedworkforce", "billion_laughs.xml"), fixture_bytes("sharedworkforce", "xxe.xml")]
    )
)
CONTENT_TYPES = st.sampled_from(
    ["", "application/json", "application/x-www-form-urlencoded", "application/xml", "text/xml", "text/plain",
     "application/vnd.com.sharedworkforce.text+json", "application/vnd.com.sharedworkforce.text+xml",
     "application/json; charset=utf-16", "application/xml;;"]
)  # fmt: skip
REQUESTS = st.tuples(
    st.sampled_from([WORDY, "/hooks/wordy-main/wrong-token-0123456789", "/hooks/swf"]),
    JSON_BODIES | FORM_BODIES | XML_BODIES | st.binary(max_size=300),
    CONTENT_TYPES,
    st.sampled_from([[], [KEY], ["wrong-key-0123456789abcdef"], [KEY, "wrong-key-0123456789abcdef"]]),
)


def test_no_body_json_form_xml_or_bytes_gets_a_5xx_authenticated_or_not(redis_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(in_process_config(tmp_path / "spool"), redis_url)) as client:

        @settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        @given(REQUESTS)
        def post_anything(request: tuple[str, bytes, str, list[str]]) -> None:
            url, body, content_type, header_keys = request
            headers = [("content-type", content_type)] + [("x-api-key", key) for key in header_keys]
            with structlog.testing.capture_logs() as logs:
                response = client.post(url, content=body, headers=headers)
            assert response.status_code < 500, (response.status_code, response.text)
            (line,) = [line for line in logs if line["event"] == "request"]
            if response.status_code >= 400:
                assert line["reason"], line

        post_anything()


# 2 and 11. The failure limiter: the client is the peer unless the peer is a trusted proxy, and only
# failures to authenticate (401) and unknown sources (404) spend its tokens.

PROXY = "10.0.0.2"


def limited_app(redis_url: str, spool: Path, trusted: str = "[]", burst: int = 3) -> Any:
    text = in_process_text(spool).replace(
        "  failure_limit: {per_minute: 0}", f"  failure_limit: {{burst: {burst}}}\n  trusted_proxies: {trusted}"
    )
    return create_app(parse_config(text, {}), redis_url)


def throttled_count() -> float:
    return metrics.CALLBACKS.labels("wordy-main", "throttled")._value.get()  # type: ignore[attr-defined]


def test_rotating_x_forwarded_for_without_a_trusted_proxy_is_throttled_after_the_burst(
    redis_url: str, tmp_path: Path
) -> None:
    before = throttled_count()
    with TestClient(limited_app(redis_url, tmp_path), client=("203.0.113.7", 4000)) as guesser:
        results = [answer(guesser, f"/hooks/wordy-main/guess-{n:020d}", b"{}",
                          headers={"x-forwarded-for": f"192.0.2.{n}"}) for n in range(5)]  # fmt: skip
    assert [response.status_code for response, _ in results] == [401, 401, 401, 429, 429]
    assert {line["client"] for _, line in results} == {"203.0.113.7"}  # the forged addresses are not logged
    assert results[-1][1]["outcome"] == "throttled"
    assert throttled_count() == before + 2  # the limiter's 429s are in workhooks_callbacks_total


def test_a_forged_x_forwarded_for_cannot_get_another_client_throttled(redis_url: str, tmp_path: Path) -> None:
    good = fixture_bytes("wordy", "message.json")
    for trusted in ("[]", f"[{PROXY}]"):
        app = limited_app(redis_url, tmp_path / trusted.strip("[]"), trusted)
        via = "203.0.113.7" if trusted == "[]" else PROXY
        with TestClient(app, client=("198.51.100.9", 4000)) as attacker, TestClient(app, client=(via, 4000)) as victim:
            for n in range(10):
                answer(attacker, f"/hooks/wordy-main/guess-{n:020d}", b"{}", headers={"x-forwarded-for": "203.0.113.7"})
            response, line = answer(victim, WORDY, good, headers={"x-forwarded-for": "203.0.113.7"})
            assert response.status_code in (200, 202), (trusted, response.text)  # accepted (or, again, a duplicate)
            assert line["client"] == "203.0.113.7"


def test_with_a_trusted_proxy_the_real_client_is_the_one_limited(redis_url: str, tmp_path: Path) -> None:
    app = limited_app(redis_url, tmp_path, f"[{PROXY}/32]")
    good = fixture_bytes("wordy", "message.json")
    with TestClient(app, client=(PROXY, 4000)) as proxy:
        # what nginx's $proxy_add_x_forwarded_for sends: whatever the client wrote, then the address it saw
        forged = [answer(proxy, f"/hooks/wordy-main/guess-{n:020d}", b"{}",
                         headers={"x-forwarded-for": f"192.0.2.{n}, 198.51.100.9"}) for n in range(5)]  # fmt: skip
        assert [response.status_code for response, _ in forged] == [401, 401, 401, 429, 429]
        assert forged[0][1]["client"] == "198.51.100.9" and forged[0][1]["peer"] == PROXY
        wordy, line = answer(proxy, WORDY, good, headers={"x-forwarded-for": "203.0.113.7"})
        assert wordy.status_code == 202 and line["client"] == "203.0.113.7"
        blocked, _ = answer(proxy, WORDY, good, headers={"x-forwarded-for": "198.51.100.9"})
        assert blocked.status_code == 429  # even a right token waits, from the address that kept failing


def test_authenticated_failures_never_spend_limiter_tokens(redis_url: str, tmp_path: Path, rdb: redis.Redis) -> None:
    before = quarantined(rdb)
    with TestClient(limited_app(redis_url, tmp_path, burst=20), client=("198.51.100.1", 4000)) as wordy:
        codes = [answer(wordy, WORDY, b'{"job_id": 1, "status": ["acp", ')[0].status_code for _ in range(30)]
        assert codes == [400] * 30  # quarantined, none 429
        assert quarantined(rdb) == before + 30
        assert answer(wordy, WORDY, fixture_bytes("wordy", "message.json"))[0].status_code == 202


# 5. The callback URL's token is compared with callback tokens only; tokens and keys are >= 16 characters.


def test_a_wordy_api_key_does_not_open_the_callback_url(redis_url: str, tmp_path: Path) -> None:
    text = in_process_text(tmp_path).replace(
        f"{{platform: wordy, token: {TOKEN}}}",
        f"{{platform: wordy, token: {TOKEN}, api_key: wordy-api-key-0123456789}}",
    )
    config = parse_config(text, {})
    assert "wordy-api-key-0123456789" in config.sources["wordy-main"].secrets()  # still redacted everywhere
    with TestClient(create_app(config, redis_url)) as client:
        response, line = answer(client, "/hooks/wordy-main/wordy-api-key-0123456789", b'{"job_id": 1}')
        assert response.status_code == 401 and line["reason"] == "bad token"
        assert answer(client, WORDY, fixture_bytes("wordy", "message.json"))[0].status_code == 202


# 12. A trailing slash is a 404 (never a 307 repeating the token); a compressed body is a 415.


def test_a_trailing_slash_is_a_404_that_repeats_nothing(client: TestClient) -> None:
    for path, method in [(WORDY + "/", "POST"), ("/hooks/swf/", "POST"), ("/hooks/wordy-main/x/y", "POST"),
                         (WORDY + "/", "GET")]:  # fmt: skip
        with structlog.testing.capture_logs() as logs:
            response = client.request(method, path, content=b"{}", headers={"host": "evil.example"})
        line = next(line for line in logs if line["event"] == "request")
        assert response.status_code == 404 and "location" not in response.headers
        assert TOKEN not in response.text and "evil" not in response.text
        assert line["route"] == "/hooks/{rest:path}" and TOKEN not in str(line)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity, gzip"])
def test_a_compressed_body_is_a_415_not_quarantined(client: TestClient, rdb: redis.Redis, encoding: str) -> None:
    import gzip

    before = quarantined(rdb)
    body = gzip.compress(fixture_bytes("wordy", "message.json"))
    for path, headers in ((WORDY, {}), ("/hooks/swf", {"x-api-key": KEY})):
        response, line = answer(client, path, body, headers={"content-encoding": encoding, **headers})
        assert response.status_code == 415 and "Content-Encoding" in line["reason"]
    assert quarantined(rdb) == before


# 3. Request heads bounded in size and time (receiver/protocol.py), bodies in time (receiver/deadline.py),
# against a real uvicorn started by `workhooks serve`.

TIMEOUTS = "  header_timeout: 1\n  body_timeout: 1\n  max_header_bytes: 16384\n"


def closed_by_server(sock: socket.socket, within: float = 10) -> bytes:
    """Read until the server closes the connection (or ``within`` seconds pass: then fail)."""
    sock.settimeout(within)
    answer = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return answer
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open; it sent {answer[:80]!r}") from None
        if not data:
            return answer
        answer += data


@pytest.mark.slow
def test_a_client_that_half_closes_is_answered_then_closed(
    start: Callable[[str], Service], tmp_path: Path, rdb: redis.Redis
) -> None:
    """Answers wait for the end of the loop's turn (receiver/protocol.py): a client that sends its request and
    shuts its side at once still gets every answer before the close; one that shuts mid-body is not waited for."""
    service = start(config(tmp_path / "spool") + TIMEOUTS)
    body = b'{"status": ["acp", "aer"], "job_id": 4242}'
    head = f"POST {WORDY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
    whole = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    answer = raw(service.port, whole + whole.replace(b"4242", b"4343"), [])  # two, pipelined, then the half-close
    assert answer.count(b"HTTP/1.1 202") == 2 and rdb.llen(keys.INBOX) == 2
    started = time.monotonic()
    cut = raw(service.port, head + b"Content-Length: 100\r\n\r\n{", [])
    assert cut == b"" and time.monotonic() - started < 0.9  # closed as it was: no wait for the body timeout
    assert rdb.llen(keys.INBOX) == 2


@pytest.mark.slow
def test_an_unfinished_oversized_header_is_refused_and_the_connection_closed(
    start: Callable[[str], Service], tmp_path: Path, figures: list[str]
) -> None:
    service = start(config(tmp_path / "spool") + TIMEOUTS)
    pid = service.web.process.pid
    before = rss_kb(pid)
    answers = []
    for _ in range(8):  # the issue's attack: 32 MiB of one header line, never finished
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
            sock.sendall(b"POST /hooks/swf HTTP/1.1\r\nHost: x\r\nX-Big: ")
            with contextlib.suppress(OSError):
                for _ in range(512):
                    sock.sendall(b"a" * 65536)
            answers.append(closed_by_server(sock))
    grown = rss_kb(pid) - before
    assert all(status_of(answer) == 431 for answer in answers), answers[0][:200]
    assert grown < 20_000, f"receiver grew {grown} kB"
    assert service.http.get("/healthz").status_code == 200
    figures.append(
        f"8 unfinished 32 MiB headers: each 431 and closed (max_header_bytes 16 KiB), receiver RSS +{grown} kB"
    )


@pytest.mark.slow
def test_slow_or_idle_connections_are_closed_past_the_read_timeouts(
    start: Callable[[str], Service], tmp_path: Path, rdb: redis.Redis, figures: list[str]
) -> None:
    service = start(config(tmp_path / "spool") + TIMEOUTS)
    port, started = service.port, time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        assert closed_by_server(idle) == b""  # opened, nothing sent: closed without a word
    idle_s = time.monotonic() - started

    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow_head:
        slow_head.sendall(b"POST /hooks/swf HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):
            for _ in range(30):  # a byte every 0.2 s: each one used to restart nothing, and nothing timed it out
                slow_head.sendall(b"X")
                time.sleep(0.2)
        assert status_of(closed_by_server(slow_head)) == 408

    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow_body:
        slow_body.sendall(f"POST {WORDY} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: 100\r\n\r\n{".encode())  # fmt: skip
        answer = closed_by_server(slow_body)
        assert status_of(answer) == 408 and b"request body not received" in answer

    with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:  # after an answer, the same bound
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(closed_by_server(kept)) == 200
    assert rdb.llen(keys.INBOX) == 0
    figures.append(f"idle connection closed after {idle_s:.1f} s (header_timeout 1 s); a header trickled a byte "
                   "per 0.2 s: 408 and closed; a body never finished: 408 and closed (body_timeout 1 s)")  # fmt: skip


@pytest.mark.slow
def test_uvicorn_does_not_rewrite_the_client_from_x_forwarded_for(
    start: Callable[[str], Service], tmp_path: Path
) -> None:
    text = config(tmp_path / "spool").replace("failure_limit: {per_minute: 0}", "failure_limit: {burst: 3}")
    service = start(text)
    codes = [service.post(f"/hooks/wordy-main/guess-{n:020d}", b"{}", **{"x-forwarded-for": f"192.0.2.{n}"}).status_code
             for n in range(5)]  # fmt: skip
    assert codes == [401, 401, 401, 429, 429]  # uvicorn trusts 127.0.0.1's X-Forwarded-For by default: not here
    assert "192.0.2." not in service.web.output()
    scraped = service.http.get("/metrics").text
    assert 'workhooks_callbacks_total{outcome="throttled",source="wordy-main"} 2.0' in scraped
