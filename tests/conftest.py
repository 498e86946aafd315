from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import CaptureServer, Service, SmtpServer
from workhooks.store import embedded


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.EmbeddedRedis]:
    """A private redis-server on a unix socket for the whole session; never the machine's own."""
    server = embedded.start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: embedded.EmbeddedRedis) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def sink_server() -> Iterator[CaptureServer]:
    server = CaptureServer().start()
    yield server
    server.stop()


FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(platform: str, name: str) -> bytes:
    return (FIXTURES / platform / name).read_bytes()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def start(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., Service]]:
    """Start our real processes on a config (and a port, when the config names it); stopped after the test."""
    services: list[Service] = []

    def starter(config: str, port: int | None = None) -> Service:
        services.append(Service(tmp_path, redis_url, config, name=f"svc{len(services)}", port=port))
        return services[-1]

    yield starter
    for service in services:
        service.stop()


FIGURES: list[str] = []


@pytest.fixture
def figures() -> list[str]:
    """Measured figures; printed at the end of the run (docs/reliability.md quotes them)."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
