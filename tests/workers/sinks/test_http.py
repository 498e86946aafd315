from __future__ import annotations

import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from workers.exceptions import DeliveryError
from workers.sinks.http import GuardedClient, check_response, is_public
from workhooks.core.headers import retry_after


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "::1", "fd00::1",
     "fe80::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "224.0.0.1", "100.64.0.1"],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
     "64:ff9b:1::808:808", "::127.0.0.1", "::8.8.8.8", "::ffff:0:10.0.0.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
     "2001:0:7f00:1:0:ffff:f7f7:f7f7", "2001:0:808:808:0:ffff:80ff:fffe"],
)  # fmt: skip
def test_ipv6_forms_carrying_a_non_public_ipv4_are_refused(address: str) -> None:
    """6to4, NAT64, IPv4-compatible and Teredo (server or client) judged by the IPv4 they carry; SIIT is reserved."""
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700:4700::1111", "8.8.8.8", "2002:5db8:d822::", "64:ff9b::808:808",
                "::ffff:8.8.8.8", "2001:0:808:808:0:ffff:f7f7:f7f7"],
)  # fmt: skip
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_the_refusal_names_the_ipv4_a_6to4_address_carries() -> None:
    with pytest.raises(DeliveryError, match=r"2002:7f00:1::, which carries 127\.0\.0\.1") as error:
        GuardedClient(timeout=1, allow_private=False).post("http://[2002:7f00:1::]:9/x", b"{}", {})
    assert error.value.permanent


def test_guard_refuses_private_destinations_before_connecting() -> None:
    client = GuardedClient(timeout=1, allow_private=False)
    for url in ["http://127.0.0.1:9/x", "http://localhost:9/x", "http://[::1]:9/x", "http://169.254.169.254/latest"]:
        with pytest.raises(DeliveryError, match="non-public address") as error:
            client.post(url, b"{}", {})
        assert error.value.permanent


def test_retry_after_forms() -> None:
    assert retry_after("7") == 7.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert retry_after("99999999") == 24 * 3600


@pytest.mark.parametrize(
    ("code", "permanent", "wait"),
    [(400, True, None), (401, True, None), (404, True, None), (410, True, None), (302, True, None),
     (408, False, None), (409, False, None), (429, False, 3.0), (500, False, None), (503, False, 3.0)],
)  # fmt: skip
def test_status_classification(code: int, permanent: bool, wait: float | None) -> None:
    with pytest.raises(DeliveryError) as error:
        check_response(httpx.Response(code, headers={"retry-after": "3"}))
    assert (error.value.status_code, error.value.permanent, error.value.retry_after) == (code, permanent, wait)


def test_2xx_passes() -> None:
    check_response(httpx.Response(204))


class Destination(BaseHTTPRequestHandler):
    """Answers 200 with a cookie and a body that declares 50 MiB, sends 1 MiB and then holds the rest back."""

    seen: ClassVar[list[dict[str, str]]] = []
    held = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Destination.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("set-cookie", "session=from-the-destination; Path=/")
        self.send_header("content-length", str(50 * 1024 * 1024))
        self.end_headers()
        self.wfile.write(b"x" * 1024 * 1024)
        self.wfile.flush()
        Destination.held.wait(10)  # bounded: the test sets it when done

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_answer_is_read_only_as_far_as_needed_and_a_destination_cookie_is_never_sent_back() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Destination)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = GuardedClient(timeout=3, allow_private=True)
        url = f"http://127.0.0.1:{server.server_address[1]}/events"
        for _ in range(2):  # reading the whole declared body would take the full timeout and fail the delivery
            answer = client.post(url, b"{}", {"content-type": "application/json"})
            assert answer.status_code == 200 and answer.headers["set-cookie"].startswith("session=")
        assert len(Destination.seen) == 2 and "cookie" not in Destination.seen[1]
        assert Destination.seen[0]["host"] == f"127.0.0.1:{server.server_address[1]}"
        assert Destination.seen[0]["user-agent"] == "workhooks/0.1" and Destination.seen[0]["accept"] == "*/*"
        with pytest.raises(DeliveryError, match="not ASCII") as error:
            client.post(url, b"{}", {"x-team": "café"})
        assert error.value.permanent
    finally:
        Destination.held.set()
        server.shutdown()
        server.server_close()


class Proxy(BaseHTTPRequestHandler):
    """An HTTP proxy as a delivery meets it: records the request line and Host, and answers for the destination."""

    lines: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Proxy.lines.append((self.requestline, self.headers.get("host", "")))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_proxy_named_in_the_environment_carries_the_delivery_to_the_checked_address_unless_no_proxy_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        client = GuardedClient(timeout=3, allow_private=True)
        assert client.post("http://localhost:9/events", b"{}", {}).status_code == 202
        ((line, host),) = Proxy.lines  # resolved and pinned: the proxy is given the address the guard checked
        assert line in ("POST http://127.0.0.1:9/events HTTP/1.1", "POST http://[::1]:9/events HTTP/1.1")
        assert host == "localhost:9"
        monkeypatch.setenv("NO_PROXY", "localhost")
        with pytest.raises(DeliveryError, match="ConnectError"):  # straight to port 9, where nothing listens
            GuardedClient(timeout=3, allow_private=True).post("http://localhost:9/events", b"{}", {})
        assert len(Proxy.lines) == 1
    finally:
        proxy.shutdown()
        proxy.server_close()
