"""The README's quick start: `make run` (workhooks up) on no config and no Redis, then its curl example."""

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

pytestmark = pytest.mark.slow


def test_up_runs_the_example_with_embedded_redis_and_prints_the_event(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKHOOKS_", "REDIS_", "PORT"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
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

            # the newcomer's next steps: send a sample, find it in the CLI and in the console's API
            cli = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 30}
            sent = subprocess.run([str(BIN / "workhooks"), "send", "wordy-main", "--id", "124",
                                   f"--url=http://127.0.0.1:{port}"], env=env, **cli)  # type: ignore[call-overload]  # fmt: skip
            assert sent.returncode == 0 and "-> 202" in sent.stdout, sent.stderr
            redis_url = log.read_text().split("embedded Redis at ", 1)[1].split(" ", 1)[0]
            admin = {"authorization": "Bearer example-admin-token-change-me"}

            def statuses() -> dict[str, str]:
                page = httpx.get(f"http://127.0.0.1:{port}/admin/api/events", headers=admin).json()
                return {item["subject"]: item["status"] for item in page["items"]}

            deadline = time.monotonic() + 15
            while statuses() != {"job/123": "delivered", "job/124": "delivered"} and time.monotonic() < deadline:
                time.sleep(0.1)
            assert statuses() == {"job/123": "delivered", "job/124": "delivered"}
            listed = subprocess.run([str(BIN / "workhooks"), "events", "list"], env={**env, "REDIS_URL": redis_url},
                                    **cli)  # type: ignore[call-overload]  # fmt: skip
            assert [line.split()[5] for line in listed.stdout.splitlines()] == ["job/124", "job/123"], listed.stderr
            assert httpx.get(f"http://127.0.0.1:{port}/admin/").status_code == 200
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(20)
    output = log.read_text()
    assert "embedded Redis at unix://" in output
    printed = [line.split("| ", 1)[1] for line in output.splitlines() if '"specversion"' in line]
    assert [json.loads(line)["id"] for line in printed[:1]] == [event_id] and len(printed) == 2  # the curl, the send
    assert (tmp_path / "var" / "redis" / "appendonlydir").is_dir() or list((tmp_path / "var" / "redis").glob("*.aof"))
