"""Processing benchmark: events processed and delivered per worker process vs trivial RQ jobs.

The baseline is what RQ itself allows: jobs that do nothing (`bench.process.noop`), run by the
same worker class `workhooks worker` runs, with the same settings. The candidate is the real
thing: callbacks taken in by a receiver become events; workers apply each to its job/task state,
route it and deliver it as a signed webhook to a local sink (bench/sink_app.py, its own process),
which logs every webhook-id it receives.

Both are loaded into Redis first and held aside; the workers start and register; then the whole
queue is released at once (one RENAME) and timed until the last job finished (baseline) or the
last event reached the sink (candidate). Rounds interleave baseline and candidate, with 1 worker
process and then with 2, on one redis-server the script starts. Prints medians and ratios and
writes var/bench/process-<time>.json. Fails (exit 1) if an event is not delivered exactly once.

    python bench/process.py            # 3 rounds, 1,600 events / 3,000 jobs per round
    python bench/process.py --quick    # what CI runs: 1 round, 200 events / 400 jobs
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.registry import FinishedJobRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench import sink_app  # noqa: E402
from bench.ingest import free_port  # noqa: E402
from bench.scale import BIN, callbacks, config, cpu_seconds, drive, wait_http  # noqa: E402
from workhooks.store import embedded, keys  # noqa: E402

QUEUE_KEY = Queue.redis_queue_namespace_prefix + keys.QUEUE
HELD = "bench:held"
TIMEOUT = 300.0
ID = re.compile(rb'("(?:job_)?id": )(\d+)')  # Wordy job ids, Shared Workforce task ids


def noop() -> None:
    """The baseline job: RQ's own cost and nothing else."""


def wait_until(done: Any, what: str, timeout: float = TIMEOUT) -> float:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"FAILED: {what} not done within {timeout:.0f} s")
        time.sleep(0.01)
    return time.monotonic()


class Bench:
    def __init__(self, folder: Path, events: int, profile: bool = False) -> None:
        self.profile = profile
        self.stacks: list[str] = []
        self.server = embedded.start(folder / "redis")
        self.client = redis.Redis.from_url(self.server.url)
        self.sink_log = folder / "sink.log"
        self.sink_log.touch()
        sink_port, self.receiver_port = free_port(), free_port()
        self.env = {**os.environ, "REDIS_URL": self.server.url, "WORKHOOKS_CONFIG": str(config(folder, sink_port)),
                    "SINK_LOG": str(self.sink_log), "PYTHONPATH": str(ROOT)}  # fmt: skip
        self.env.pop("LOG_LEVEL", None)  # the default level, as in production
        self.logs = open(folder / "processes.log", "ab")  # noqa: SIM115 - kept open while the processes run
        uvicorn = [str(BIN / "uvicorn"), "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
        self.services = [
            subprocess.Popen([*uvicorn, "--port", str(sink_port), "bench.sink_app:app"], env=self.env, cwd=ROOT),
            self._start([str(BIN / "workhooks"), "serve", "--port", str(self.receiver_port)]),
        ]
        for port in (sink_port, self.receiver_port):
            wait_http(f"http://127.0.0.1:{port}/healthz", self.services[0])
        jobs = max(1, events * 4 // 25)  # scale.callbacks: per job 5 events, per 4 jobs 1 task
        self.items = callbacks(jobs, jobs // 4)
        self.round = 0

    def close(self) -> None:
        for process in self.services:
            process.terminate()
        for process in self.services:
            process.wait(20)
        self.logs.close()
        self.server.stop()

    def _start(self, command: list[str]) -> subprocess.Popen[bytes]:
        """A service of ours, its lines (at the default level) in processes.log."""
        return subprocess.Popen(command, env=self.env, stdout=self.logs, stderr=self.logs)

    def _workers(self, count: int) -> list[subprocess.Popen[bytes]]:
        workers = [self._start([str(BIN / "workhooks"), "worker"]) for _ in range(count)]
        registered = keys.RQ_QUEUE_WORKERS
        wait_until(lambda: self.client.scard(registered) >= count, "worker start", 60)
        return workers

    def _timed(self, count: int, done: Any, profile: bool = False) -> dict[str, Any]:
        """Start `count` workers, release the held queue, wait for `done`; seconds and worker CPU."""
        workers = self._workers(count)
        sampler = self._sampler(workers[0].pid) if profile else None
        cpu_before = [cpu_seconds(w.pid) for w in workers]
        redis_before = cpu_seconds(self.server.process.pid)
        self.client.config_resetstat()
        try:
            started = time.monotonic()
            self.client.rename(HELD, QUEUE_KEY)
            finished = wait_until(done, "the queue")
            cpu = sum(cpu_seconds(w.pid) - before for w, before in zip(workers, cpu_before, strict=True))
            redis_cpu = cpu_seconds(self.server.process.pid) - redis_before
            calls = {name.removeprefix("cmdstat_"): int(stat["calls"])
                     for name, stat in self.client.info("commandstats").items()}  # fmt: skip
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
            if sampler is not None:
                sampler.wait(60)
        return {"seconds": finished - started, "worker_cpu_s": cpu, "redis_cpu_s": redis_cpu, "redis_calls": calls}

    def baseline(self, jobs: int, workers: int) -> dict[str, Any]:
        self.client.flushdb()
        queue = Queue(keys.QUEUE, connection=self.client)
        with self.client.pipeline() as pipe:
            for _ in range(jobs):
                queue.enqueue("bench.process.noop", pipeline=pipe)
            pipe.execute()
        self.client.rename(QUEUE_KEY, HELD)
        registry = FinishedJobRegistry(keys.QUEUE, connection=self.client)
        result = self._timed(workers, lambda: registry.count >= jobs)
        return {"kind": "trivial RQ jobs", "workers": workers, "count": jobs, **result,
                "per_s": jobs / result["seconds"]}  # fmt: skip

    def candidate(self, workers: int) -> dict[str, Any]:
        self.client.flushdb()
        self.sink_log.write_bytes(b"")
        self.round += 1
        tagged = [dataclasses.replace(item, body=self._tag(item.body)) for item in self.items]
        ids, statuses = asyncio.run(drive([self.receiver_port], tagged))
        if set(statuses) - {200, 202}:
            raise SystemExit(f"FAILED: the receiver answered {dict(statuses)}")
        self.client.rename(QUEUE_KEY, HELD)
        delivered_all = lambda: len(set(sink_app.ids(self.sink_log))) >= len(ids)  # noqa: E731
        result = self._timed(workers, delivered_all, self.profile and workers == 1)
        time.sleep(0.5)  # anything delivered twice arrives now
        delivered = Counter(sink_app.ids(self.sink_log))
        twice = sum(1 for n in delivered.values() if n > 1)
        if twice or set(delivered) != ids:
            raise SystemExit(f"FAILED: {twice} events delivered twice or events missing")
        return {"kind": "events processed and delivered", "workers": workers, "count": len(ids), **result,
                "per_s": len(ids) / result["seconds"]}  # fmt: skip

    def _sampler(self, pid: int) -> subprocess.Popen[bytes] | None:
        """py-spy on the worker until it exits: collapsed stacks (all threads, GIL holders only) beside the report."""
        py_spy = shutil.which("py-spy", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        if py_spy is None:
            print("  py-spy not installed (pip install py-spy): no profile")
            return None
        report_file.OUT.mkdir(parents=True, exist_ok=True)
        out = report_file.OUT / f"process-profile-{report_file.stamp()}-{self.round}.txt"
        self.stacks.append(str(out))
        command = [py_spy, "record", "--pid", str(pid), "--rate", "250", "--gil", "--format", "raw",
                   "--output", str(out)]  # fmt: skip
        sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attached
        return sampler

    def _tag(self, body: bytes) -> bytes:
        """Fresh job ids each round, so no callback is a duplicate of an earlier round's."""
        offset = self.round * 1_000_000
        return ID.sub(lambda m: m[1] + b"%d" % (offset + int(m[2])), body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=1600)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--profile", action="store_true",
                        help="sample the one-worker candidate rounds with py-spy (pip install py-spy)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.events, args.jobs = 1, 200, 400
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.events, args.profile)
        try:
            for _ in range(args.rounds):
                for workers in (1, 2):
                    results.append(bench.baseline(args.jobs, workers))
                    results.append(bench.candidate(workers))
                    for result in results[-2:]:
                        print(f"  {result['workers']} worker(s) {result['kind']:<31} {result['count']:>5} in "
                              f"{result['seconds']:5.2f} s = {result['per_s']:6.0f}/s; worker CPU "
                              f"{result['worker_cpu_s'] * 1000 / result['count']:.2f} ms each, Redis CPU "
                              f"{result['redis_cpu_s'] * 1000 / result['count']:.2f} ms each, "
                              f"{sum(result['redis_calls'].values()) / result['count']:.1f} Redis commands each"
                              )  # fmt: skip
        finally:
            bench.close()

    def median(kind: str, workers: int) -> float:
        return statistics.median(r["per_s"] for r in results if r["kind"] == kind and r["workers"] == workers)

    summary: dict[str, Any] = {}
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {sys.version.split()[0]}")
    for workers in (1, 2):
        trivial, events = median("trivial RQ jobs", workers), median("events processed and delivered", workers)
        summary[f"{workers}_workers"] = {"trivial_per_s": trivial, "events_per_s": events, "ratio": events / trivial}
        print(f"{workers} worker(s): trivial RQ jobs {trivial:.0f}/s, events {events:.0f}/s, "
              f"ratio {events / trivial:.2f}")  # fmt: skip
    scaling = summary["2_workers"]["events_per_s"] / summary["1_workers"]["events_per_s"]
    print(f"events/s with 2 workers / 1 worker: {scaling:.2f}x (trivial jobs: "
          f"{summary['2_workers']['trivial_per_s'] / summary['1_workers']['trivial_per_s']:.2f}x)")  # fmt: skip
    report = {
        "machine": {"cpus": os.cpu_count(), "cpu": platform.machine(), "python": sys.version.split()[0]},
        "settings": vars(args),
        "rounds": results,
        "summary": summary,
        "scaling_2_over_1": scaling,
        "profiles": bench.stacks,
    }
    report_file.write("process", report)


if __name__ == "__main__":
    main()
