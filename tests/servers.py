"""Real servers on 127.0.0.1 for tests: an HTTP capture server, and our own processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis

from workhooks.core.events import Event
from workhooks.store import embedded, keys

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def chromium() -> str:
    """The system's Chromium, for the console's tests (Playwright drives it); skipped where there is none."""
    import pytest

    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.skip("no Chromium: apt-get install chromium (CI installs it)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CaptureServer:
    """Records every POST; answers ``status`` (a callable may decide per request)."""

    status: int | Callable[[Captured], int] = 200
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer (e.g. Retry-After)
    requests: list[Captured] = field(default_factory=list)  # the ones answered 2xx
    arrived: list[Captured] = field(default_factory=list)  # every request, as it arrives
    answered: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, status) of every request
    delay: float = 0.0  # seconds before each answer: a slow destination
    in_flight: int = 0  # requests being answered now
    most_in_flight: int = 0  # ... and the most at once
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, port: int = 0) -> CaptureServer:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                request = Captured(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with capture.lock:
                    capture.in_flight += 1
                    capture.most_in_flight = max(capture.most_in_flight, capture.in_flight)
                try:
                    if capture.delay:
                        time.sleep(capture.delay)
                    self.answer(request)
                finally:
                    with capture.lock:
                        capture.in_flight -= 1

            def answer(self, request: Captured) -> None:
                capture.arrived.append(request)
                status = capture.status(request) if callable(capture.status) else capture.status
                capture.answered.append((time.monotonic(), status))
                if 200 <= status < 300:
                    capture.requests.append(request)
                self.send_response(status)
                for name, value in capture.headers.items():
                    self.send_header(name, value)
                if 300 <= status < 400:
                    self.send_header("location", "http://127.0.0.1:9/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the listen backlog: 5 by default, which resets concurrent deliveries
            daemon_threads = True

        self.server = Server(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, timeout: float = 15) -> list[Captured]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.requests)


class Process:
    """One of our own commands (`workhooks serve`, `workhooks worker`) as a child process."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.process = subprocess.Popen(
            [str(BIN / "workhooks"), *args],
            env=env,
            cwd=ROOT,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: RQ's scheduler child goes with it
        )

    def output(self) -> str:
        self.handle.flush()
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group, as an OOM kill or a lost container would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything it left behind
        self.handle.close()


def process_env(redis_url: str, config: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("WORKHOOKS_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, WORKHOOKS_CONFIG=str(config), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(extra)
    return env


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@dataclass
class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives; refuses rcpt 'nobody@...'.

    ``starttls`` offers STARTTLS with that context; ``implicit_tls`` is smtps (TLS from the start).
    AUTH is offered, before TLS too (as a hostile server would), and accepts ``credentials``;
    ``commands`` records every command line the client sent (the AUTH arguments included).
    """

    starttls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    credentials: tuple[str, str] = ("hooks@example.com", "smtp-password-1234")
    messages: list[Any] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    controller: Any = None

    def start(self) -> SmtpServer:
        from email import message_from_bytes, policy

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

        server = self

        class Handler:
            async def handle_RCPT(self, smtp: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                if address.startswith("nobody@"):
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
                mail = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
                server.messages.append((envelope, mail))
                return "250 Message accepted"

        def authenticator(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            given = (data.login.decode(), data.password.decode()) if isinstance(data, LoginPassword) else None
            return AuthResult(success=given == server.credentials)

        class Recording(SMTP):  # type: ignore[misc]
            async def smtp_AUTH(self, arg: str) -> None:
                server.commands.append(f"AUTH {arg}")
                await super().smtp_AUTH(arg)

            async def smtp_EHLO(self, hostname: str) -> None:
                server.commands.append(f"EHLO {hostname}")
                await super().smtp_EHLO(hostname)

            async def smtp_STARTTLS(self, arg: str) -> None:
                server.commands.append("STARTTLS")
                await super().smtp_STARTTLS(arg)

            async def smtp_MAIL(self, arg: str) -> None:
                server.commands.append(f"MAIL {arg}")
                await super().smtp_MAIL(arg)

        class Serving(Controller):  # type: ignore[misc]
            def factory(self) -> SMTP:
                return Recording(self.handler, **self.SMTP_kwargs)

        self.controller = Serving(
            Handler(),
            hostname="127.0.0.1",
            port=free_port(),
            ssl_context=self.implicit_tls,
            tls_context=self.starttls,
            authenticator=authenticator,
            auth_require_tls=False,
        )
        self.controller.start()
        return self

    @property
    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.controller.port}"

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout: float = 15) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.messages)


# Credentials the end-to-end configs use; tests search every output for them.
TOKEN = "e2e-wordy-token-0123456789"
KEY = "e2e-swf-key-5d41402abc4b2a76"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Service:
    """`workhooks serve` and `workhooks worker` as real processes on one config and one Redis."""

    def __init__(
        self,
        tmp_path: Path,
        redis_url: str,
        config: str,
        name: str = "svc",
        worker: bool = True,
        port: int | None = None,
        **env: str,
    ) -> None:
        path = tmp_path / f"{name}.yaml"
        path.write_text(config)
        self.tmp_path, self.name = tmp_path, name
        self.config_path = path
        self.port = port or free_port()  # given: the config names the receiver's address (email action links)
        self.env = process_env(redis_url, path, PORT=str(self.port), HOST="127.0.0.1", **env)
        self.web = Process(["serve"], self.env, tmp_path / f"{name}-web.log")
        self.workers: list[Process] = []
        if worker:
            self.start_worker()
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.base, timeout=10)  # one keep-alive client, as a platform has
        wait_http(self.base + "/healthz")

    @property
    def worker(self) -> Process:
        return self.workers[-1]

    def start_scheduler(self) -> Process:
        log = self.tmp_path / f"{self.name}-scheduler{len(self.workers)}.log"  # two schedulers: a log each
        self.workers.append(Process(["scheduler"], self.env, log))
        return self.workers[-1]

    def start_worker(self) -> Process:
        self.workers.append(Process(["worker"], self.env, self.tmp_path / f"{self.name}-worker{len(self.workers)}.log"))
        return self.workers[-1]

    def post(self, path: str, body: bytes, content_type: str = "application/json", **headers: str) -> httpx.Response:
        return self.http.post(path, content=body, headers={"content-type": content_type, **headers})

    def wordy(self, body: bytes, content_type: str = "application/json") -> httpx.Response:
        return self.post(f"/hooks/wordy-main/{TOKEN}", body, content_type)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the `workhooks` CLI against this service's Redis and config."""
        return subprocess.run(
            [str(BIN / "workhooks"), *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    def logs(self) -> str:
        return self.web.output() + "".join(worker.output() for worker in self.workers)

    def stop(self) -> None:
        self.http.close()
        self.web.stop()
        for worker in self.workers:
            worker.stop()


class RedisProxy:
    """A TCP proxy to a Redis unix socket that a test can make drop or stall connections."""

    def __init__(self, socket_path: str) -> None:
        import asyncio

        self.socket_path = socket_path
        self.mode = "pass"  # pass | drop | stall
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._writers: set[Any] = set()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(5)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _run(self, ready: threading.Event) -> None:
        import asyncio

        async def pipe(reader: Any, writer: Any) -> None:
            try:
                while data := await reader.read(65536):
                    while self.mode == "stall":
                        await asyncio.sleep(0.05)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader: Any, writer: Any) -> None:
            if self.mode == "drop":
                writer.close()
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.socket_path)
            except OSError:
                writer.close()
                return
            self._writers |= {writer, upstream_writer}
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

        async def main() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())

    def set(self, mode: str) -> None:
        """'drop' also cuts every open connection; 'stall' holds bytes in flight."""
        self.mode = mode
        if mode == "drop":
            for writer in list(self._writers):
                self.loop.call_soon_threadsafe(writer.close)
            self._writers.clear()


def wait_until(condition: Callable[[], object], timeout: float = 15, what: str = "condition") -> None:
    """Poll `condition` every 0.1 s until it is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true within {timeout} s")
        time.sleep(0.1)


class KillableRedis:
    """A private redis-server with AOF under one folder, which the test kills and starts again."""

    def __init__(self, directory: Path, appendfsync: str = "everysec") -> None:
        self.directory, self.appendfsync = directory, appendfsync
        self.server = embedded.start(directory, appendfsync=appendfsync)

    @property
    def url(self) -> str:
        return self.server.url

    def kill(self) -> None:
        self.server.process.kill()
        self.server.process.wait(10)

    def restart(self) -> None:
        self.server = embedded.start(self.directory, appendfsync=self.appendfsync)

    def stop(self) -> None:
        self.server.stop()


def deliver_queued(rdb: redis.Redis, event: Event | None = None, sinks: tuple[str, ...] = ()) -> None:
    """In-process: open ``event``'s deliveries to ``sinks`` (stored as processing stores them, if given),
    then deliver everything due, as a worker's dispatcher does (workers/dispatch.py)."""
    from workers import delivery, dispatch

    if event is not None:
        rdb.set(keys.event(event.id), event.to_json())
        with rdb.pipeline(transaction=True) as pipe:
            delivery.open_deliveries(pipe, event, sinks)
            pipe.execute()
    dispatch.drain(rdb, limit_s=30)
