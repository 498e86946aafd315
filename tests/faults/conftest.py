"""Fault injection: real redis-server processes killed and restarted, workers SIGKILLed, a proxy that drops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workhooks import embedded

FIGURES: list[str] = []


@pytest.fixture
def figures() -> list[str]:
    """Measured figures; printed at the end of the run (docs/reliability.md quotes them)."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


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


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[KillableRedis]:
    server = KillableRedis(tmp_path / "redis")
    yield server
    server.stop()
