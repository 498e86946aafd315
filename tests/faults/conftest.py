"""Fault injection: real redis-server processes killed and restarted, workers SIGKILLed, a proxy that drops."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.servers import KillableRedis, free_port, wait_until
from workhooks.store import embedded


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[KillableRedis]:
    server = KillableRedis(tmp_path / "redis")
    yield server
    server.stop()


class SentinelCluster:
    """A real primary, one replica and three sentinels on 127.0.0.1 ports (the redis-server binary)."""

    SERVICE = "workhooks"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.primary_port = self._server("primary")
        self._server("replica", "--replicaof", "127.0.0.1", str(self.primary_port))
        self.sentinel_ports = [self._sentinel(f"sentinel{n}") for n in range(3)]
        wait_until(self._ready, timeout=30, what="sentinels to see the primary, its replica and each other")

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0"

    def _start(self, name: str, args: list[str]) -> int:
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        command = [embedded.redis_binary(), *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                   "--logfile", str(folder / "redis.log")]  # fmt: skip
        self.processes[name] = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self.ports[name] = port
        wait_until(lambda: self._ping(port), timeout=10, what=f"{name} to answer")
        return port

    def _server(self, name: str, *extra: str) -> int:
        return self._start(name, ["--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction", *extra])

    def _sentinel(self, name: str) -> int:
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "sentinel.conf"  # sentinel rewrites its own config file
        conf.write_text(
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
            f"sentinel failover-timeout {self.SERVICE} 5000\n"
            f"sentinel parallel-syncs {self.SERVICE} 1\n"
        )
        return self._start(name, [str(conf), "--sentinel"])

    @staticmethod
    def _ping(port: int) -> bool:
        try:
            return bool(redis.Redis(port=port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _ready(self) -> bool:
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
            try:
                master = client.sentinel_master(self.SERVICE)
                replicas = client.sentinel_slaves(self.SERVICE)
            except redis.RedisError:
                return False
            if int(master["num-other-sentinels"]) < 2 or not replicas or replicas[0]["flags"] != "slave":
                return False
        return True

    def primary(self) -> tuple[str, int]:
        host, port = redis.Redis(port=self.sentinel_ports[0], socket_timeout=1).sentinel_get_master_addr_by_name(
            self.SERVICE
        )
        return host.decode() if isinstance(host, bytes) else host, int(port)

    def kill_primary(self) -> None:
        name = next(name for name, port in self.ports.items() if port == self.primary()[1])
        self.processes[name].kill()
        self.processes[name].wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(tmp_path / "sentinel")
    yield cluster
    cluster.stop()
