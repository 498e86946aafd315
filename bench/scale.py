"""The multi-process proof: 2 receivers and 4 workers on one Redis against 1 receiver and 1 worker.

Both runs get the same mixed callbacks — Wordy status changes sent out of order, Wordy messages,
Shared Workforce task responses, a fifth of them sent twice — spread over their receivers, and
deliver to one local webhook sink (bench/sink_app.py, its own process). Each run starts its own
redis-server. Checks, failing with exit 1: every distinct event delivered exactly once, and the
job/task state the workers built identical in both runs. Reports the throughput of each (distinct
events from the first request to the last delivery) and their ratio. Writes var/bench/scale-<time>.json.

    python bench/scale.py            # 600 Wordy jobs + 200 tasks: 3,200 events, ~3,800 callbacks
    python bench/scale.py --quick    # what CI runs: 60 jobs + 20 tasks
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench import sink_app  # noqa: E402
from bench.ingest import free_port  # noqa: E402
from bench.load import read_answer  # noqa: E402
from workhooks.store import embedded, keys  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = "scale-token-0123456789abcdef"  # noqa: S105 - throwaway credentials for private test servers
KEY = "scale-key-0123456789abcdef"
CHAIN = ["awc", "acp", "aer", "acr", "c"]  # Wordy statuses in the order a job moves through them
CONNECTIONS = 16
DRAIN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Callback:
    path: str
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def callbacks(jobs: int, tasks: int, seed: int = 7) -> list[Callback]:
    """The mix: per job its 4 status changes shuffled and a message; per task one response; 1 in 5 twice."""
    rng = random.Random(seed)
    wordy = f"/hooks/wordy-main/{TOKEN}"
    items = []
    for job in range(1, jobs + 1):
        steps = [json.dumps({"status": [a, b], "job_id": job}).encode() for a, b in itertools.pairwise(CHAIN)]
        rng.shuffle(steps)  # out of order: the state must still end at "c"
        items += [Callback(wordy, "application/json", body) for body in steps]
        message = {"username": "Editor", "message": f"note on job {job}", "job_id": job}
        items.append(Callback(wordy, "application/json", json.dumps(message).encode()))
    for task in range(1, tasks + 1):
        body = {"task": {"id": task, "title": f"task {task}", "responses": [{"answer": f"a{task}", "id": f"r{task}"}]}}
        items.append(Callback("/hooks/swf", "application/json", json.dumps(body).encode(), (("x-api-key", KEY),)))
    items += rng.sample(items, len(items) // 5)  # a platform retrying: the same callback again
    rng.shuffle(items)
    return items


def config(folder: Path, sink_port: int) -> Path:
    path = folder / "workhooks.yaml"
    path.write_text(f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
  swf: {{platform: sharedworkforce, api_key: {KEY}}}
sinks:
  hook: {{type: webhook, url: "http://127.0.0.1:{sink_port}/events", allow_private: true}}
routes:
  - to: [hook]
receiver:
  spool_dir: {folder}/spool
  failure_limit: {{per_minute: 0}}
""")
    return path


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


async def drive(ports: list[int], items: list[Callback]) -> tuple[set[str], Counter[int]]:
    """Send every callback once, round-robin over the receivers, CONNECTIONS keep-alive connections.

    Raw HTTP/1.1 over asyncio streams, one write per request: httpx writes head and body apart,
    and Nagle + delayed ACK then cost ~40 ms a request on loopback.
    """
    ids: set[str] = set()
    statuses: Counter[int] = Counter()
    pending = iter(enumerate(items))

    async def connection(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _, item in pending:
                extra = "".join(f"{name}: {value}\r\n" for name, value in item.headers)
                head = (f"POST {item.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {item.content_type}\r\n"
                        f"{extra}Content-Length: {len(item.body)}\r\n\r\n")  # fmt: skip
                writer.write(head.encode() + item.body)
                status, answer = await read_answer(reader)
                statuses[status] += 1
                if status in (200, 202):
                    ids.add(json.loads(answer)["id"])
        finally:
            writer.close()

    await asyncio.gather(*(connection(ports[n % len(ports)]) for n in range(CONNECTIONS)))
    return ids, statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def normalized_states(client: redis.Redis) -> dict[str, Any]:
    """Each job/task's state by its content: what does not depend on arrival order.

    Which event ids a subject's history holds does: a retry that arrives after a later callback of
    its job counts as a recurrence (README, "A resend is not a recurrence"), and the two runs
    interleave callbacks differently. Compared: the status, the transitions, messages and responses
    seen (as sets), the phase and status of the current stay, not the ids nor how many times each was
    told nor when the stay began.
    """
    states = {}
    for key in client.scan_iter(keys.state("*", "*")):
        state = json.loads(client.get(key) or b"{}")
        history = sorted({(h["from"], h["to"]) for h in state.pop("history", [])})
        messages = sorted({(m["author"], m["message"]) for m in state.pop("messages", [])})
        responses = sorted(json.dumps(r, sort_keys=True) for r in state.pop("responses", []))
        state.pop("updated_at", None)
        state.pop("events", None)
        stay = state.pop("stay", None) or {}  # when and by which event the stay began: arrival order again
        state["stay"] = {"phase": stay.get("phase"), "status": stay.get("status")}
        states[key.decode()] = {**state, "history": history, "messages": messages, "responses": responses}
    return states


def run(name: str, receivers: int, workers: int, items: list[Callback], sink_delay_ms: int = 0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = embedded.start(folder / "redis")
        sink_log = folder / "sink.log"
        sink_port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "WORKHOOKS_CONFIG": str(config(folder, sink_port)),
               "LOG_LEVEL": "WARNING", "SINK_LOG": str(sink_log), "SINK_DELAY_MS": str(sink_delay_ms)}  # fmt: skip
        uvicorn = [str(BIN / "uvicorn"), "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
        processes = [subprocess.Popen([*uvicorn, "--port", str(sink_port), "bench.sink_app:app"], env=env, cwd=ROOT)]
        ports = [free_port() for _ in range(receivers)]
        commands = [["serve", "--port", str(port)] for port in ports] + [["worker"]] * workers
        try:
            for command in commands:
                processes.append(subprocess.Popen([str(BIN / "workhooks"), *command], env=env))
            for port in [*ports, sink_port]:
                wait_http(f"http://127.0.0.1:{port}/healthz", processes[0])
            started = time.monotonic()
            ids, statuses = asyncio.run(drive(ports, items))
            acked = time.monotonic() - started
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while len(set(sink_app.ids(sink_log))) < len(ids) and time.monotonic() < deadline:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            time.sleep(1.0)  # anything delivered twice would arrive now
            delivered = Counter(sink_app.ids(sink_log))
            roles = ["sink"] + ["receivers"] * receivers + ["workers"] * workers
            cpu = {"redis": cpu_seconds(server.process.pid)}
            for role, process in zip(roles, processes, strict=True):
                cpu[role] = cpu.get(role, 0.0) + cpu_seconds(process.pid)
            states = normalized_states(redis.Redis.from_url(server.url))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(20)
            server.stop()
    return {
        "name": name,
        "receivers": receivers,
        "workers": workers,
        "callbacks_sent": len(items),
        "statuses": dict(statuses),
        "distinct_events": len(ids),
        "delivered_distinct": len(set(delivered) & ids),
        "delivered_twice": sum(1 for count in delivered.values() if count > 1),
        "delivered_unknown": len(set(delivered) - ids),
        "ingest_per_s": len(items) / acked,
        "events_per_s": len(ids) / elapsed,
        "seconds": elapsed,
        "cpu_seconds": {role: round(seconds, 1) for role, seconds in cpu.items()},
        "states": states,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=600)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--sink-delay-ms", type=int, default=0, help="the sink answers after this long")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.tasks = 60, 20
    items = callbacks(args.jobs, args.tasks)
    single = run("1 receiver + 1 worker", 1, 1, items, args.sink_delay_ms)
    scaled = run("2 receivers + 4 workers", 2, 4, items, args.sink_delay_ms)
    problems = []
    for result in (single, scaled):
        print(
            f"{result['name']:<24} {result['callbacks_sent']} callbacks -> {result['distinct_events']} events: "
            f"ingest {result['ingest_per_s']:.0f}/s, delivered {result['delivered_distinct']} in "
            f"{result['seconds']:.1f} s = {result['events_per_s']:.0f} events/s; twice {result['delivered_twice']}, "
            f"statuses {result['statuses']}; CPU s {result['cpu_seconds']}"
        )
        if result["delivered_distinct"] != result["distinct_events"] or result["delivered_twice"]:
            problems.append(f"{result['name']}: not every event delivered exactly once")
        if result["delivered_unknown"] or set(result["statuses"]) - {200, 202}:
            problems.append(f"{result['name']}: unexpected deliveries or answers")
    if single["states"] != scaled["states"]:
        differing = [key for key in single["states"] if single["states"][key] != scaled["states"].get(key)]
        problems.append(f"state differs from the single-process run for {len(differing)} subjects: {differing[:5]}")
    ratio = scaled["events_per_s"] / single["events_per_s"]
    print(f"state identical: {single['states'] == scaled['states']} ({len(single['states'])} jobs/tasks)")
    print(f"throughput ratio (2 receivers + 4 workers) / (1 + 1): {ratio:.2f}x on {os.cpu_count()} CPUs")
    report = {
        "machine": {"cpus": os.cpu_count(), "cpu": platform.machine(), "python": sys.version.split()[0]},
        "settings": {**vars(args), "connections": CONNECTIONS},
        "runs": [{k: v for k, v in result.items() if k != "states"} for result in (single, scaled)],
        "ratio": ratio,
        "state_identical": single["states"] == scaled["states"],
        "problems": problems,
    }
    report_file.write("scale", report)
    if problems:
        raise SystemExit("FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    main()
