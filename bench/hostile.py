"""Hostile traffic against one receiver run as production runs it (`workhooks serve`, the Procfile's web
command, default log level, limits on): what each attack costs the receiver, and what a well-behaved
client sees meanwhile. Figures go to var/bench/hostile-<time>.json and docs/reliability.md
("Hostile input").

1. XML: a 1 MiB body of `<task>` and sibling `<a/>` elements, no key, posted by curl to /hooks/swf: its
   answer and answer time, and /healthz latency while it is read, against /healthz latency with nothing else
   going on in the same run (the ratio is the cost the event loop paid).
2. Heads: 8 connections each sending one header line of 32 MiB and never finishing it: how each
   ended, how long it took, and the receiver's RSS before, at its peak and after.
3. Idle: 50 connections opened and left silent: how long until the receiver closed them
   (receiver.header_timeout, 10 s by default).

    python bench/hostile.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench.ingest import free_port  # noqa: E402
from bench.scale import BIN, KEY, TOKEN, wait_http  # noqa: E402
from workhooks.store import embedded  # noqa: E402

MIB = 1024 * 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def receiver_pid(serve: subprocess.Popen[bytes]) -> int:
    """`workhooks serve` is the receiver itself (uvicorn in-process, one worker)."""
    return serve.pid


def healthz_latencies(port: int, seconds: float, stop: threading.Event | None = None) -> list[float]:
    """GET /healthz back to back for `seconds` (or until `stop`): each answer's time in ms."""
    found: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        while time.monotonic() < deadline and not (stop and stop.is_set()) and len(found) < 100_000:
            started = time.perf_counter()
            client.get("/healthz")
            found.append((time.perf_counter() - started) * 1000)
    return found


def xml_case(port: int) -> dict[str, Any]:
    idle = healthz_latencies(port, 2.0)
    siblings = (MIB - 20) // 4
    body = b"<task>" + b"<a/>" * siblings + b"</task>"
    stop, during = threading.Event(), []
    probe = threading.Thread(target=lambda: during.extend(healthz_latencies(port, 60, stop)))
    probe.start()
    time.sleep(0.3)
    with tempfile.NamedTemporaryFile(suffix=".xml") as file:  # the attacker is another process: curl
        file.write(body)
        file.flush()
        answer = subprocess.run(
            [shutil.which("curl") or "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
             "-H", "content-type: application/xml", "--data-binary", f"@{file.name}",
             f"http://127.0.0.1:{port}/hooks/swf"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()  # fmt: skip
    status, took = int(answer[0]), float(answer[1]) * 1000
    time.sleep(0.3)
    stop.set()
    probe.join(70)
    worst_idle, worst_during = max(idle), max(during)

    def summary(found: list[float]) -> dict[str, float]:
        return {"p50": round(statistics.median(found), 2), "max": round(max(found), 2), "n": len(found)}

    return {
        "body_bytes": len(body),
        "siblings": siblings,
        "status": status,
        "answer_ms": round(took, 1),
        "healthz_idle_ms": summary(idle),
        "healthz_during_ms": summary(during),
        "healthz_max_ratio_during_vs_idle": round(worst_during / worst_idle, 2),
    }


def unfinished_head(port: int, size: int, outcome: list[str], at: list[float]) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.settimeout(30)
        try:
            sock.sendall(b"POST /hooks/swf HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
            chunk, sent = b"a" * 65536, 0
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
            answer = sock.recv(200)
            outcome.append(answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed")
        except OSError as error:  # reset or broken pipe: the receiver closed it
            try:
                answer = sock.recv(200)
            except OSError:
                answer = b""
            first = answer.split(b"\r\n", 1)[0].decode(errors="replace")
            outcome.append(first or f"closed ({type(error).__name__})")
    at.append(time.monotonic() - started)


def heads_case(port: int, pid: int, connections: int = 8, size: int = 32 * MIB) -> dict[str, Any]:
    before, peak = rss_kib(pid), 0
    outcome: list[str] = []
    at: list[float] = []
    threads = [threading.Thread(target=unfinished_head, args=(port, size, outcome, at)) for _ in range(connections)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_kib(pid))
        time.sleep(0.01)
    for thread in threads:
        thread.join(60)
    time.sleep(0.5)
    return {
        "connections": connections,
        "header_bytes_each": size,
        "outcomes": sorted(outcome),
        "ended_after_s": round(max(at), 3) if at else None,
        "rss_kib": {"before": before, "peak": peak, "after": rss_kib(pid)},
    }


def idle_case(port: int, connections: int = 50) -> dict[str, Any]:
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(connections)]
    started, closed = time.monotonic(), []
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.recv(1)  # b"" when the receiver closes it
        closed.append(time.monotonic() - started)
        sock.close()
    return {"connections": connections, "all_closed_after_s": round(max(closed), 2),
            "first_closed_after_s": round(min(closed), 2)}  # fmt: skip


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    with tempfile.TemporaryDirectory() as folder:
        redis_server = embedded.start(Path(folder) / "redis")
        path = Path(folder) / "workhooks.yaml"
        path.write_text(f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
sinks:
  log: {{type: log, path: {folder}/events.jsonl}}
routes: [{{to: [log]}}]
receiver: {{spool_dir: {folder}/spool}}
""")
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis_server.url, "WORKHOOKS_CONFIG": str(path)}
        serve = subprocess.Popen([str(BIN / "workhooks"), "serve", "--port", str(port)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", serve)
            pid = receiver_pid(serve)
            result = {
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "how": "one `workhooks serve` (Procfile web command, default log level and limits), attacks from "
                "this process's threads over 127.0.0.1; /healthz probed back to back by one client",
                "xml_1mib": xml_case(port),
                "unfinished_32mib_heads": heads_case(port, pid),
                "idle_connections": idle_case(port),
                "receiver_alive_after": serve.poll() is None
                and httpx.get(f"http://127.0.0.1:{port}/healthz").is_success,
            }
        finally:
            serve.terminate()
            serve.wait(20)
            redis_server.stop()
    for name, figures in result.items():
        print(f"{name}: {figures}")
    report_file.write("hostile", result)
    return 0 if result["receiver_alive_after"] else 1


if __name__ == "__main__":
    sys.exit(main())
