"""The README's quick start: `make run` (workhooks up) on no config and no Redis, then its curl example;
the CLI from a second terminal with no REDIS_URL; and `up` stopping everything it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import BIN, free_port, wait_http
from workhooks.cli import local
from workhooks.store import embedded

pytestmark = pytest.mark.slow


def clean_env() -> dict[str, str]:
    """No REDIS_URL, no WORKHOOKS_*, no PORT: what a newcomer's shell has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKHOOKS_", "REDIS_", "PORT"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_up(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(BIN / "workhooks"), "up", "--port", str(port)], cwd=folder, env=clean_env(),
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def test_up_runs_the_example_with_embedded_redis_and_prints_the_event(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env()
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "workhooks"), "up", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            response = httpx.post(
                f"http://127.0.0.1:{port}/hooks/wordy-main/example-token-change-me",
                headers={"Content-Type": "application/json"},
                content=b'{"status": ["acp", "aer"], "job_id": 123}',
            )
            assert response.status_code == 202
            event_id = response.json()["id"]
            deadline = time.monotonic() + 15
            while event_id not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)

            # the newcomer's next steps from a second terminal, with no REDIS_URL and no --url: send a
            # sample to the receiver `up` runs, find it in the CLI and in the console's API
            cli = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 30}
            sent = subprocess.run([str(BIN / "workhooks"), "send", "wordy-main", "--id", "124"], env=env, **cli)  # type: ignore[call-overload]  # fmt: skip
            assert sent.returncode == 0 and "-> 202" in sent.stdout, sent.stderr
            assert (
                f"posting to the receiver 'workhooks up' runs in this folder (http://127.0.0.1:{port})" in sent.stderr
            )
            redis_url = log.read_text().split("embedded Redis at ", 1)[1].split(" ", 1)[0]
            admin = {"authorization": "Bearer example-admin-token-change-me"}

            def statuses() -> dict[str, str]:
                page = httpx.get(f"http://127.0.0.1:{port}/admin/api/events", headers=admin).json()
                return {item["subject"]: item["status"] for item in page["items"]}

            deadline = time.monotonic() + 15
            while statuses() != {"job/123": "delivered", "job/124": "delivered"} and time.monotonic() < deadline:
                time.sleep(0.1)
            assert statuses() == {"job/123": "delivered", "job/124": "delivered"}
            listed = subprocess.run([str(BIN / "workhooks"), "events", "list", "--since", "10m"], env=env, **cli)  # type: ignore[call-overload]  # fmt: skip
            assert [line.split()[5] for line in listed.stdout.splitlines()] == ["job/124", "job/123"], listed.stderr
            assert f"using the embedded Redis of this folder ({redis_url})" in listed.stderr
            stats = subprocess.run([str(BIN / "workhooks"), "stats"], env=env, **cli)  # type: ignore[call-overload]  # fmt: skip
            assert stats.returncode == 0 and "workers      1" in stats.stdout, stats.stdout + stats.stderr
            assert httpx.get(f"http://127.0.0.1:{port}/admin/").status_code == 200
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(20)
    output = log.read_text()
    assert "embedded Redis at unix://" in output
    printed = [line.split("| ", 1)[1] for line in output.splitlines() if '"specversion"' in line]
    assert [json.loads(line)["id"] for line in printed[:1]] == [event_id] and len(printed) == 2  # the curl, the send
    assert (tmp_path / "var" / "redis" / "appendonlydir").is_dir() or list((tmp_path / "var" / "redis").glob("*.aof"))


def processes_of(up: subprocess.Popen[bytes], count: int) -> list[int]:
    """Every process below `up` once honcho has started its ``count`` processes (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = local.descendants(up.pid)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in found if Path(f"/proc/{pid}").exists()]
        if sum(b"/bin/sh" in command for command in commands) >= count and any(b"redis-server" in c for c in commands):
            return found
        time.sleep(0.1)
    raise AssertionError(f"up did not start its {count} processes and Redis within 20 s")


def left_alive(pids: list[int]) -> list[str]:
    return [Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") for pid in pids if local.alive(pid)]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
def test_sigterm_or_sighup_to_up_alone_stops_everything_and_a_second_up_starts_at_once(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "up.log"
    for signum in (signal.SIGTERM, signal.SIGHUP):
        began = time.monotonic()
        up = start_up(tmp_path, port, log)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
            started = time.monotonic() - began
            pids = processes_of(up, 3)  # web, worker, scheduler (each under sh), honcho's own and redis-server
            assert json.loads((tmp_path / "var" / "up.json").read_text())["receiver"] == f"http://127.0.0.1:{port}"
            os.kill(up.pid, signum)  # `up` alone, as systemd, kill or a closing terminal would
            assert up.wait(30) == 128 + signum
        finally:
            if up.poll() is None:
                up.kill()
                up.wait(10)
        deadline = time.monotonic() + 5
        while left_alive(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left_alive(pids) == [], log.read_text()[-3000:]
        assert started < 30
        assert not (tmp_path / "var" / "up.json").exists() and not (tmp_path / "var" / "redis" / "redis.json").exists()
        assert not (tmp_path / "var" / "redis" / "redis.sock").exists()
        assert "removed what a killed run left" not in log.read_text()  # the first stop left nothing to clean
    stopped = subprocess.run([str(BIN / "workhooks"), "stats"], cwd=tmp_path, env=clean_env(), capture_output=True,
                             text=True, timeout=30)  # fmt: skip
    assert stopped.returncode == 3 and "no Redis: REDIS_URL is unset and no embedded Redis runs in" in stopped.stderr
    assert list((tmp_path / "var" / "redis").glob("appendonly*"))  # written before Redis stopped


def test_a_socket_and_record_left_by_a_killed_redis_are_cleaned_up_on_start(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "redis"
    first = embedded.start(folder)
    first.process.kill()  # SIGKILL: no chance to remove its socket or its record
    first.process.wait(10)
    assert (folder / "redis.sock").exists() and (folder / "redis.json").exists()
    assert embedded.running(folder) is None
    second = embedded.start(folder)
    try:
        assert second.cleaned is not None and "redis.sock" in second.cleaned
        assert embedded.running(folder) == second.url
        with pytest.raises(embedded.EmbeddedRedisError, match="already running"):  # a live one is left alone
            embedded.start(folder)
        assert embedded.running(folder) == second.url
    finally:
        second.stop()
    assert embedded.running(folder) is None and not (folder / "redis.json").exists()
