"""Delivery benchmark: the same events to sinks that answer in 0, 100 and 500 ms, one worker, same run.

Starts its own redis-server, a receiver and workers exactly as the Procfile does (`workhooks serve`,
`workhooks worker`, default settings and log level) and local sinks (bench/sink_app.py: uvicorn, a
line per request with its arrival and answer times). Per scenario, N callbacks are accepted while the
sink is paused (`workhooks sinks pause`), so what is timed is delivery alone: from resuming it to
the last event at the sink. Then, with the sink running, N more callbacks are sent as they come and
the time from sending each callback to its arrival at the sink is the end-to-end latency.

Scenarios:
- one worker, webhook sinks answering in 0, 100 and 500 ms: delivered/s and its ratio to 0 ms;
- four workers sharing `max_in_flight: 8` on a 100 ms sink: the most requests the sink saw at once;
- a Slack-like sink (1/s per webhook, bursts of 3 tolerated, 429 past it) sent a burst of events with
  the slack sink type's defaults: 429s provoked, dead letters.
Each webhook-id must arrive exactly once (exit 1 otherwise). Worker RSS is read at the start and end
of each scenario, and between its two halves (threads and clients exist by then). Writes var/bench/delivery-<time>.json.

    python bench/delivery.py            # 1,000 events per sink, a Slack burst of 100 (~2.5 min)
    python bench/delivery.py --quick    # what CI runs: 200 events, a Slack burst of 6
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench import sink_app  # noqa: E402
from bench.ingest import free_port  # noqa: E402
from bench.latency import percentile, rss_kib  # noqa: E402
from bench.scale import BIN, TOKEN, wait_http  # noqa: E402
from workhooks.store import embedded, keys, outbox  # noqa: E402

PATH = f"/hooks/wordy-main/{TOKEN}"
WAIT = 300.0  # the longest any phase may take before the bench gives up (exit 1)


def config(folder: Path, sink: str) -> Path:
    path = folder / "workhooks.yaml"
    path.write_text(f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  out: {sink}
routes:
  - to: [out]
receiver:
  spool_dir: {folder}/spool
""")
    return path


class Stack:
    """redis-server, one sink, one receiver and ``workers`` workers, for one scenario."""

    def __init__(self, folder: Path, sink: str, workers: int, delay_ms: int = 0, rate: float = 0) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.server = embedded.start(folder / "redis")
        self.client = redis.Redis.from_url(self.server.url)
        self.sink_log = folder / "sink.log"
        sink_port, self.port = free_port(), free_port()
        self.sink_url = f"http://127.0.0.1:{sink_port}/events"
        self.env = {**os.environ, "REDIS_URL": self.server.url, "SINK_LOG": str(self.sink_log),
                    "SINK_DELAY_MS": str(delay_ms), "SINK_RATE": str(rate),
                    "WORKHOOKS_CONFIG": str(config(folder, sink.format(url=self.sink_url)))}  # fmt: skip
        self.env.pop("LOG_LEVEL", None)  # the default level, as in production
        uvicorn = [str(BIN / "uvicorn"), "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
        logs = open(folder / "processes.log", "ab")  # noqa: SIM115 - kept open while the processes run
        self.sink = subprocess.Popen([*uvicorn, "--port", str(sink_port), "bench.sink_app:app"], env=self.env, cwd=ROOT)
        self.receiver = subprocess.Popen([str(BIN / "workhooks"), "serve", "--port", str(self.port)], env=self.env,
                                         stdout=logs, stderr=logs)  # fmt: skip
        self.workers = [subprocess.Popen([str(BIN / "workhooks"), "worker"], env=self.env, stdout=logs, stderr=logs)
                        for _ in range(workers)]  # fmt: skip
        for port in (sink_port, self.port):
            wait_http(f"http://127.0.0.1:{port}/healthz", self.sink)
        self.next_job = 1

    def cli(self, *args: str) -> str:
        done = subprocess.run([str(BIN / "workhooks"), *args], env=self.env, capture_output=True, text=True, timeout=60)
        return done.stdout

    def held(self) -> int:
        return int(self.client.hget(keys.outbox("out"), "held") or 0)

    def rss(self) -> list[int]:
        return [rss_kib(worker.pid) for worker in self.workers]

    def send(self, count: int) -> dict[str, float]:
        """``count`` distinct callbacks, 32 at a time; event id -> when its request was sent (Unix time)."""
        acked: dict[str, float] = {}
        jobs = iter(range(self.next_job, self.next_job + count))
        self.next_job += count

        async def one_connection(client: httpx.AsyncClient) -> None:
            for job in jobs:
                body = b'{"status": ["acp", "aer"], "job_id": %d}' % job
                sent = time.time()
                answer = await client.post(PATH, content=body, headers={"content-type": "application/json"})
                if answer.status_code == 202:
                    acked[answer.json()["id"]] = sent

        async def all_connections() -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as client:
                await asyncio.gather(*(one_connection(client) for _ in range(32)))

        asyncio.run(all_connections())
        return acked

    def wait(self, condition: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {what} did not happen within {WAIT:.0f} s")
            time.sleep(0.05)

    def close(self) -> None:
        for process in [self.receiver, *self.workers, self.sink]:
            process.terminate()
        for process in [self.receiver, *self.workers, self.sink]:
            process.wait(60)
        self.server.stop()


def most_at_once(rows: list[tuple[str, float, float, int]]) -> int:
    """The most requests the sink was answering at the same time, from (arrived, answered) of each."""
    edges = sorted([(arrived, 1) for _, arrived, _, _ in rows] + [(done, -1) for _, _, done, _ in rows])
    current = most = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def webhook_scenario(
    folder: Path, delay_ms: int, count: int, workers: int = 1, in_flight: int | None = None
) -> dict[str, Any]:
    limit = f", max_in_flight: {in_flight}" if in_flight else ""
    sink = '{{type: webhook, url: "{url}", allow_private: true' + limit + "}}"
    stack = Stack(folder, sink, workers, delay_ms)
    try:
        rss_start = stack.rss()
        stack.cli("sinks", "pause", "out", "--reason", "bench preload")
        acked = stack.send(count)
        stack.wait(lambda: stack.held() == len(acked), "processing the preload")
        started = time.time()
        outbox.resume(stack.client, "out")  # what `workhooks sinks resume` does, without a CLI's start-up in the timing
        stack.wait(lambda: len(sink_app.answered(stack.sink_log)) >= len(acked), "delivering the preload")
        rows = sink_app.answered(stack.sink_log)
        took = max(done for _, _, done, _ in rows) - started
        rss_warm = stack.rss()  # threads started, clients built: what is left to grow is per delivery
        live = stack.send(count)  # then as they come: acknowledgement to arrival
        stack.wait(lambda: len(sink_app.answered(stack.sink_log)) >= len(acked) + len(live), "delivering live")
        time.sleep(0.5)
        every = sink_app.answered(stack.sink_log)
        arrivals = {webhook_id: arrived for webhook_id, arrived, _, _ in every}
        latencies = [arrivals[event_id] - at for event_id, at in live.items() if event_id in arrivals]
        counted = Counter(webhook_id for webhook_id, *_ in every)
        expected = set(acked) | set(live)
        return {
            "sink_delay_ms": delay_ms,
            "workers": workers,
            "max_in_flight": in_flight or "default (64)",
            "events": len(expected),
            "delivered_per_s": round(len(acked) / took, 1),
            "delivery_seconds": round(took, 2),
            "live_e2e_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "live_e2e_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "most_at_once_at_the_sink": most_at_once(every),
            "twice": sum(1 for n in counted.values() if n > 1),
            "missing": len(expected - set(counted)),
            "non_2xx": sum(1 for *_, code in every if code >= 300),
            "worker_rss_kib": {"start": rss_start, "after_first_half": rss_warm, "end": stack.rss()},
        }
    finally:
        stack.close()


def slack_scenario(folder: Path, count: int) -> dict[str, Any]:
    stack = Stack(folder, '{{type: slack, url: "{url}", allow_any_host: true, allow_private: true}}', 1, 0, rate=1.0)
    try:
        acked = stack.send(count)
        stack.wait(lambda: len([r for r in sink_app.answered(stack.sink_log) if r[3] < 300]) >= len(acked),
                   "the Slack-like burst")  # fmt: skip
        time.sleep(0.5)
        rows = sink_app.answered(stack.sink_log)
        ok = [arrived for _, arrived, _, code in rows if code < 300]
        return {
            "events": len(acked),
            "delivered": len(ok),
            "status_429": sum(1 for *_, code in rows if code == 429),
            "dead": stack.client.zcard(keys.DEAD_INDEX),
            "spread_seconds": round(max(ok) - min(ok), 1),
        }
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 events per sink, a Slack burst of 6")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args()
    count = args.events or (200 if args.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="workhooks-bench-delivery-") as tmp:
        folder = Path(tmp)
        runs = [webhook_scenario(folder / f"delay{delay}", delay, count) for delay in (0, 100, 500)]
        shared = webhook_scenario(folder / "shared", 100, count, workers=4, in_flight=8)
        slack = slack_scenario(folder / "slack", 6 if args.quick else 100)
    base = runs[0]["delivered_per_s"]
    for run in runs:
        run["ratio_to_0ms"] = round(run["delivered_per_s"] / base, 3)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "how": "Procfile commands, default log level; preload while paused, timed from resume to the last arrival",
        "one_worker": runs,
        "four_workers_max_in_flight_8": shared,
        "slack_like_1_per_s": slack,
    }
    for run in runs:
        rss = run["worker_rss_kib"]
        print(f"{run['sink_delay_ms']:>4} ms sink: {run['delivered_per_s']:>7.1f} delivered/s "
              f"({run['ratio_to_0ms']:.2f}x 0 ms)  live e2e p50 {run['live_e2e_p50_ms']} ms "
              f"p99 {run['live_e2e_p99_ms']} ms  at once {run['most_at_once_at_the_sink']}  "
              f"worker RSS {rss['start']} -> {rss['after_first_half']} -> {rss['end']} KiB")  # fmt: skip
    print(f"4 workers, max_in_flight 8: at most {shared['most_at_once_at_the_sink']} at once at the sink, "
          f"{shared['delivered_per_s']} delivered/s")  # fmt: skip
    print(f"slack-like 1/s: {slack['delivered']}/{slack['events']} delivered over {slack['spread_seconds']} s, "
          f"{slack['status_429']} answered 429, {slack['dead']} dead")  # fmt: skip
    report_file.write("delivery", report)
    broken = [run for run in [*runs, shared] if run["twice"] or run["missing"]]
    if broken or shared["most_at_once_at_the_sink"] > 8 or slack["dead"] or slack["delivered"] < slack["events"]:
        raise SystemExit("bench: an event was lost or delivered twice, the cap was passed, or Slack events died")


if __name__ == "__main__":
    main()
