"""A tiny threaded HTTP server for platform emulators: JSON in, JSON out, failures on command."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Emulator:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: deque[tuple[int, dict[str, str], Any]] = deque()
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # method, path, query
        self.server: ThreadingHTTPServer | None = None

    def fail_next(self, count: int, status: int, body: Any = None, **headers: str) -> None:
        """The next `count` requests get this answer instead of the real one."""
        with self.lock:
            self.failures.extend([(status, headers, body)] * count)

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        raise NotImplementedError

    def start(self) -> Emulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with emulator.lock:
                    emulator.requests.append((method, parts.path, query))
                    failure = emulator.failures.popleft() if emulator.failures else None
                if failure is not None:
                    status, extra, body = failure
                else:
                    extra = {}
                    status, body = emulator.handle(
                        method, parts.path, query, {k.lower(): v for k, v in self.headers.items()}
                    )
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._answer("GET")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
