"""End-to-end benchmark: callbacks/s offered at a steady rate -> latency until the sink has the event.

Starts its own redis-server, one receiver, WORKERS worker processes and a local webhook sink
(bench/sink_app.py, which logs each webhook-id with the time it arrived). For each offered rate
an open-loop driver sends distinct Wordy status callbacks on a fixed schedule (a late answer does
not delay the next request, and latency counts from the scheduled time, so a stalled server
cannot hide its backlog), samples the queue depth, and waits for every acknowledged callback to
reach the sink. Reports per rate: acknowledgement p50/p99, end-to-end p50/p99, delivered rate,
queue depth, and fails (exit 1) if an acknowledged callback never arrives or arrives twice.
Writes var/bench/latency-<time>.json and a plot of throughput and latency vs offered load
(var/bench/latency-<time>.png; --plot PATH writes it there too).

    python bench/latency.py                   # 50 ... 500 callbacks/s, 10 s each, 2 workers
    python bench/latency.py --quick           # what CI runs: 50 and 100/s, 2 s each
    python bench/latency.py --memory 100000   # one long run at --rate: RSS of receiver and workers
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rq.registry import FinishedJobRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench import sink_app  # noqa: E402
from bench.ingest import free_port  # noqa: E402
from bench.load import read_answer  # noqa: E402
from bench.scale import BIN, TOKEN, config, cpu_seconds, wait_http  # noqa: E402
from workhooks.store import embedded, keys  # noqa: E402

RATES = [50, 100, 200, 300, 400, 500]
CONNECTIONS = 64
DRAIN_TIMEOUT = 120.0
PATH = f"/hooks/wordy-main/{TOKEN}"
QUEUE_KEY = keys.QUEUE_KEY


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Offered:
    started: float  # Unix time of the first scheduled request
    seconds: float  # until the last answer
    scheduled: dict[str, float]  # event id -> Unix time its request was due
    acks: list[float]  # seconds from due to answered
    statuses: Counter[int]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def offer(port: int, rate: float, count: int, first_job: int) -> Offered:
    """Send `count` callbacks at `rate`/s on a fixed schedule, whatever the answers take."""
    clock = time.monotonic  # not loop.time(): uvloop's clock ticks in whole milliseconds
    start_wall, start = time.time() + 0.2, clock() + 0.2
    scheduled: dict[str, float] = {}
    acks: list[float] = []
    statuses: Counter[int] = Counter()
    tickets = iter(range(count))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n in tickets:
                due = start + n / rate
                await asyncio.sleep(max(0.0, due - clock()))
                body = b'{"status": ["acp", "aer"], "job_id": %d}' % (first_job + n)
                head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                status, answer = await read_answer(reader)
                acks.append(clock() - due)
                statuses[status] += 1
                if status == 202:
                    scheduled[json.loads(answer)["id"]] = start_wall + n / rate
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return Offered(start_wall, clock() - start, scheduled, acks, statuses)


class Stack:
    """redis-server, one receiver, the workers and the sink, for the whole run."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.server = embedded.start(folder / "redis")
        self.client = redis.Redis.from_url(self.server.url)
        self.sink_log = folder / "sink.log"
        sink_port, self.port = free_port(), free_port()
        env = {**os.environ, "REDIS_URL": self.server.url, "WORKHOOKS_CONFIG": str(config(folder, sink_port)),
               "SINK_LOG": str(self.sink_log)}  # fmt: skip
        env.pop("LOG_LEVEL", None)  # the default level, as in production: a line per request, event and attempt
        logs = open(folder / "processes.log", "ab")  # noqa: SIM115 - kept open while the processes run
        uvicorn = [str(BIN / "uvicorn"), "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
        self.sink = subprocess.Popen([*uvicorn, "--port", str(sink_port), "bench.sink_app:app"], env=env, cwd=ROOT)
        self.receiver = subprocess.Popen([str(BIN / "workhooks"), "serve", "--port", str(self.port)], env=env,
                                         stdout=logs, stderr=logs)  # fmt: skip
        self.workers = [subprocess.Popen([str(BIN / "workhooks"), "worker"], env=env, stdout=logs, stderr=logs)
                        for _ in range(workers)]  # fmt: skip
        for port in (sink_port, self.port):
            wait_http(f"http://127.0.0.1:{port}/healthz", self.sink)
        self.next_job = 1

    def cpu(self) -> dict[str, float]:
        return {"receiver": cpu_seconds(self.receiver.pid), "workers": sum(cpu_seconds(w.pid) for w in self.workers),
                "redis": cpu_seconds(self.server.process.pid), "sink": cpu_seconds(self.sink.pid)}  # fmt: skip

    def close(self) -> None:
        for process in [self.receiver, *self.workers, self.sink]:
            process.terminate()
        for process in [self.receiver, *self.workers, self.sink]:
            process.wait(30)
        self.server.stop()

    def run(self, rate: float, seconds: float, sample: Any = None) -> dict[str, Any]:
        import uvloop

        count = int(rate * seconds)
        depths: list[int] = []
        stop = threading.Event()

        def sampler() -> None:
            client = redis.Redis.from_url(self.server.url)
            while not stop.wait(0.25):
                with client.pipeline(transaction=False) as pipe:  # as workhooks_queue_depth counts it
                    pipe.llen(QUEUE_KEY)
                    pipe.llen(keys.INBOX)
                    depths.append(sum(pipe.execute()))
                if sample is not None:
                    sample()

        before = len(sink_app.received(self.sink_log))
        finished = FinishedJobRegistry(keys.QUEUE, connection=self.client)
        jobs_before, cpu_before, own_before = finished.count, self.cpu(), time.process_time()
        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        try:
            offered = uvloop.run(offer(self.port, rate, count, self.next_job))
            scheduled, acks = offered.scheduled, offered.acks
            self.next_job += count
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while len(sink_app.received(self.sink_log)) - before < len(scheduled) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # anything delivered twice arrives now
        finally:
            stop.set()
            thread.join()
        cpu = {role: round(used - cpu_before[role], 2) for role, used in self.cpu().items()}
        cpu["load generator"] = round(time.process_time() - own_before, 2)
        arrivals = sink_app.received(self.sink_log)[before:]
        seen = Counter(webhook_id for webhook_id, _ in arrivals)
        first = {webhook_id: at for webhook_id, at in reversed(arrivals)}
        latencies = [first[i] - at for i, at in scheduled.items() if i in first]
        window = [at for _, at in arrivals]
        third = max(1, len(depths) // 3)
        return {
            "offered_per_s": rate,
            "sent": count,
            "acknowledged": len(scheduled),
            "statuses": dict(offered.statuses),
            "ack_rate_per_s": len(acks) / offered.seconds,
            "ack_p50_ms": percentile(acks, 0.5) * 1000,
            "ack_p99_ms": percentile(acks, 0.99) * 1000,
            "delivered": len(seen),
            "delivered_twice": sum(1 for n in seen.values() if n > 1),
            "missing": len(set(scheduled) - set(seen)),
            "delivered_per_s": len(window) / (max(window) - offered.started) if window else 0.0,
            "e2e_p50_ms": percentile(latencies, 0.5) * 1000,
            "e2e_p99_ms": percentile(latencies, 0.99) * 1000,
            "rq_jobs": (jobs := finished.count - jobs_before),  # drain jobs: how far the inbox's batching went
            "events_per_rq_job": len(seen) / jobs if jobs else 0.0,
            "cpu_s_by_role": cpu,  # over the run and its drain, /proc: what shares the cores
            "queue_depth_max": max(depths, default=0),
            "queue_depth_first_third": statistics.mean(depths[:third]) if depths else 0,
            "queue_depth_last_third": statistics.mean(depths[-third:]) if depths else 0,
        }


def plot(results: list[dict[str, Any]], paths: list[Path], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [r["offered_per_s"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(offered, offered, ":", color="grey", label="offered")
    left.plot(offered, [r["ack_rate_per_s"] for r in results], "o-", label="acknowledged (202)")
    left.plot(offered, [r["delivered_per_s"] for r in results], "s-", label="delivered to the sink")
    left.set(xlabel="offered callbacks/s", ylabel="per second", title="throughput")
    left.legend()
    lines = [("e2e_p50_ms", "request -> sink p50", "o-"), ("e2e_p99_ms", "request -> sink p99", "o--"),
             ("ack_p50_ms", "acknowledgement p50", "s-"), ("ack_p99_ms", "acknowledgement p99", "s--")]  # fmt: skip
    for key, label, style in lines:
        right.plot(offered, [r[key] for r in results], style, label=label)
    right.set(xlabel="offered callbacks/s", ylabel="ms (log)", yscale="log", title="latency")
    right.legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    for path in paths:
        fig.savefig(path, dpi=110)
    plt.close(fig)


def memory(stack: Stack, total: int, rate: float) -> dict[str, Any]:
    """One long run; RSS of the receiver and each worker sampled four times a second."""
    processes = {"receiver": stack.receiver, **{f"worker{n}": w for n, w in enumerate(stack.workers)}}
    samples: dict[str, list[int]] = {name: [] for name in processes}

    def sample() -> None:
        for name, process in processes.items():
            samples[name].append(rss_kib(process.pid))

    result = stack.run(rate, total / rate, sample)
    report: dict[str, Any] = {"run": result}
    for name, values in samples.items():
        warm = values[len(values) // 10]  # after the first tenth of the run
        report[name] = {"rss_after_warmup_kib": warm, "rss_end_kib": values[-1], "rss_max_kib": max(values),
                        "growth_after_warmup": (values[-1] - warm) / warm}  # fmt: skip
        print(f"{name:<9} RSS after warm-up {warm / 1024:.1f} MiB, at the end {values[-1] / 1024:.1f} MiB "
              f"({report[name]['growth_after_warmup']:+.1%}), max {max(values) / 1024:.1f} MiB")  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rates", type=lambda text: [float(r) for r in text.split(",")], default=RATES)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory", type=int, metavar="CALLBACKS", help="one long run of this many callbacks")
    parser.add_argument("--rate", type=float, default=200.0, help="the rate of the --memory run")
    parser.add_argument("--plot", type=Path, help="also write the plot here")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.seconds = [50.0, 100.0], 2.0
    machine = {"cpus": os.cpu_count(), "cpu": platform.machine(), "python": sys.version.split()[0]}
    at = report_file.stamp()
    report: dict[str, Any] = {"machine": machine, "settings": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), args.workers)
        try:
            if args.memory:
                report["memory"] = memory(stack, args.memory, args.rate)
                results = [report["memory"]["run"]]
            else:
                stack.run(20, 1.0)  # warm-up: imports, connections, the script loaded
                results = []
                for rate in args.rates:
                    results.append(stack.run(rate, args.seconds))
                    r = results[-1]
                    print(f"offered {rate:>5.0f}/s: acked {r['ack_rate_per_s']:6.0f}/s (p50 {r['ack_p50_ms']:5.1f} ms, "
                          f"p99 {r['ack_p99_ms']:6.1f} ms), delivered {r['delivered_per_s']:6.0f}/s, request -> sink "
                          f"p50 {r['e2e_p50_ms']:7.1f} ms p99 {r['e2e_p99_ms']:7.1f} ms, queue depth "
                          f"{r['queue_depth_first_third']:.0f} -> {r['queue_depth_last_third']:.0f} "
                          f"(max {r['queue_depth_max']}), {r['events_per_rq_job']:.1f} events per RQ job\n    CPU s: "
                          + ", ".join(f"{role} {used}" for role, used in r["cpu_s_by_role"].items()))  # fmt: skip
        finally:
            stack.close()
    report["runs"] = results
    problems = [f"{r['offered_per_s']:.0f}/s: {r['missing']} missing, {r['delivered_twice']} twice, {r['statuses']}"
                for r in results if r["missing"] or r["delivered_twice"] or set(r["statuses"]) != {202}]  # fmt: skip
    report["problems"] = problems
    print(f"machine: {machine}; {args.workers} workers, 1 receiver")
    report_file.write("latency", report, at)
    if not args.memory:
        pictures = [report_file.OUT / f"latency-{at}.png", *([args.plot] if args.plot else [])]
        plot(results, pictures, f"1 receiver + {args.workers} workers, {machine['cpus']} CPUs, one webhook sink")
        print(f"plot: {', '.join(str(p) for p in pictures)}")
    if problems:
        raise SystemExit("FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    main()
