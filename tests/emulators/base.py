"""A tiny threaded HTTP server for platform emulators, plus a callback outbox and a callback sink.

Extends the project's base: GET/POST/PUT/DELETE, request bodies (JSON, urlencoded and multipart forms),
per-request response headers, non-JSON responses, failures on command. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 8 * 1024 * 1024  # bytes; bigger request bodies get a 413


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    form: dict[str, list[str]] = field(default_factory=dict)  # urlencoded or multipart text fields
    files: dict[str, list[Upload]] = field(default_factory=dict)  # multipart file fields
    json: Any = None  # parsed body when the content type says JSON (None if absent or unparsable)
    json_error: bool = False  # the body claimed to be JSON and did not parse

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def param(self, name: str, default: str | None = None) -> str | None:
        """First value of `name` from the form, else the query string."""
        values = self.form.get(name) or self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-encoded unless `raw` is given; None means an empty body
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body).encode() if self.body is not None else b""


def parse_body(request: Request) -> None:
    """Fill request.form / files / json from request.body according to its content type."""
    kind, body = request.content_type, request.body
    if not body:
        return
    if kind == "application/x-www-form-urlencoded":
        request.form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    elif kind == "multipart/form-data":
        head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        for part in message.iter_parts() if message.is_multipart() else []:
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is None:
                request.form.setdefault(name, []).append(data.decode("utf-8", "replace"))
            else:
                upload = Upload(filename, part.get_content_type(), data)
                request.files.setdefault(name, []).append(upload)
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            request.json = json.loads(body)
        except ValueError:
            request.json_error = True


class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its open connections and handler threads, so that close() leaves
    nothing behind: no listening socket, no connection kept alive by a client, no handler thread."""

    daemon_threads = True  # close() joins them; a stuck one must not hold the interpreter at exit

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.handlers: list[threading.Thread] = []
        self.tracking = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self.tracking:  # registered before the thread runs: close() cannot miss it
            self.connections.add(request)
            self.handlers = [handler for handler in self.handlers if handler.is_alive()]
            self.handlers.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self.tracking:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close(self, timeout: float = 5.0) -> None:
        """After shutdown(): close the listening socket, hang up kept-alive connections, join handlers."""
        self.server_close()
        with self.tracking:
            connections, handlers = list(self.connections), list(self.handlers)
        for connection in connections:  # its handler's next read sees end of file; an answer being written
            with contextlib.suppress(OSError):  # still goes out whole
                connection.shutdown(socket.SHUT_RD)
        for handler in handlers:
            if handler is not threading.current_thread():
                handler.join(timeout)


class Emulator:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.failures: deque[Response] = deque()
        self.requests: list[Request] = []
        self.server: Server | None = None
        self._serving: threading.Thread | None = None

    def fail_next(self, count: int, status: int, body: Any = None, **headers: str) -> None:
        """The next `count` requests get this answer instead of the real one (header names: _ becomes -)."""
        names = {name.replace("_", "-"): value for name, value in headers.items()}
        with self.lock:
            self.failures.extend([Response(status, body, names)] * count)

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def start(self) -> Self:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # headers and body go out in two writes: no Nagle delay between them
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self._send(Response(413, {"error": "body too large"}, {"connection": "close"}))
                    self.close_connection = True
                    return
                request = Request(
                    method,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length > 0 else b"",
                )
                parse_body(request)
                with emulator.lock:
                    emulator.requests.append(request)
                    failure = emulator.failures.popleft() if emulator.failures else None
                self._send(failure if failure is not None else emulator.handle(request))

            def _send(self, response: Response) -> None:
                payload = response.payload()
                self.send_response(response.status)
                names = {name.lower() for name in response.headers}
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if "content-type" not in names and payload:
                    self.send_header("content-type", response.content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def do_PUT(self) -> None:
                self._answer("PUT")

            def do_DELETE(self) -> None:
                self._answer("DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self._serving = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._serving.start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving and release everything start() opened (idempotent; `url` stays readable)."""
        serving, self._serving = self._serving, None
        if self.server is None or serving is None:
            return
        self.server.shutdown()
        serving.join()
        self.server.close()


@dataclass
class Callback:
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None  # answer from the receiver, None until delivered (0: connection failed)


class Outbox:
    """Callbacks a platform owes its client. Delivered by flush(), or at once on a thread if auto=True.

    drop_next(n) silently loses the next n callbacks (kept in `dropped`); resend(i) delivers a
    delivered callback again, byte for byte, like a platform retrying.
    """

    def __init__(self, auto: bool = False, timeout: float = 5.0) -> None:
        self.auto = auto
        self.timeout = timeout
        self.pending: deque[Callback] = deque()
        self.delivered: list[Callback] = []
        self.dropped: list[Callback] = []
        self._drop = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # one delivery at a time, in order
        self._threads: list[threading.Thread] = []  # auto deliveries

    def add(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"callback URL must be http(s): {url!r}")
        with self._lock:
            callback = Callback(url, body, headers)
            if self._drop > 0:
                self._drop -= 1
                self.dropped.append(callback)
                return
            self.pending.append(callback)
        if self.auto:
            thread = threading.Thread(target=self.flush, daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the auto deliveries started so far to finish."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def drop_next(self, count: int = 1) -> None:
        with self._lock:
            self._drop += count

    def flush(self) -> list[Callback]:
        """Deliver everything pending (bounded by what is pending now); return what was sent."""
        sent: list[Callback] = []
        with self._send_lock:
            with self._lock:
                batch = list(self.pending)
                self.pending.clear()
            for callback in batch:
                self._post(callback)
                sent.append(callback)
        return sent

    def resend(self, index: int = -1) -> Callback:
        original = self.delivered[index]
        again = Callback(original.url, original.body, dict(original.headers))
        with self._send_lock:
            self._post(again)
        return again

    def _post(self, callback: Callback) -> None:
        request = urllib.request.Request(callback.url, callback.body, callback.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                callback.status = answer.status
        except urllib.error.HTTPError as error:
            callback.status = error.code
            error.close()  # it holds the answer's connection open
        except OSError:
            callback.status = 0
        with self._lock:
            self.delivered.append(callback)


class CallbackSink(Emulator):
    """A receiver for callbacks: records every request and answers `status` (default 200)."""

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status
        self.arrived = threading.Condition(self.lock)

    def handle(self, request: Request) -> Response:
        with self.arrived:
            self.arrived.notify_all()
        return Response(self.status, raw=b"", content_type="text/plain")

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Request]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)
