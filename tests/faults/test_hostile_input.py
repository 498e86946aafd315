"""Hostile input over raw sockets against a real uvicorn: bounded memory and time, clear 4xx, nothing queued."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import fixture_bytes
from tests.servers import KEY, TOKEN, Service
from workhooks.store import keys

pytestmark = pytest.mark.slow

LIMIT = 1024 * 1024


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
