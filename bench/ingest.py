"""Ingest benchmark: durable, deduplicated acknowledgements vs a bare-202 Starlette baseline.

Starts its own redis-server, the baseline app and the workhooks receiver (each one uvicorn
process, uvloop + httptools, access log off), interleaves baseline and receiver rounds, and
prints medians, the ratio and p99, then checks that every acknowledged callback is in Redis.
Writes var/bench/ingest-<time>.json.

    python bench/ingest.py             # 5 rounds of 10 s each side, 32 connections
    python bench/ingest.py --quick     # what CI runs: 2 rounds of 2 s

With granian installed (pip install granian), the same receiver also runs under granian (one
worker, uvloop, access log off), interleaved with the others: the ASGI server comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench.load import Result, run  # noqa: E402
from workhooks.store import embedded, keys  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a throwaway token for a private test server
PATH = f"/hooks/wordy-main/{TOKEN}"
BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command[0]} did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 2.0

    with tempfile.TemporaryDirectory() as folder:
        server = embedded.start(Path(folder) / "redis")
        config = Path(folder) / "workhooks.yaml"
        config.write_text(
            f"sources:\n  wordy-main: {{platform: wordy, token: {TOKEN}}}\n"
            f"receiver: {{spool_dir: {folder}/spool, failure_limit: {{per_minute: 0}}}}\n"
        )
        env = {**os.environ, "REDIS_URL": server.url, "WORKHOOKS_CONFIG": str(config), "LOG_LEVEL": "WARNING"}
        uvicorn = [str(BIN / "uvicorn"), "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
        base_port, receiver_port = free_port(), free_port()
        processes = [
            serve([*uvicorn, "--port", str(base_port), "bench.bare_app:app"], env, base_port),
            serve([*uvicorn, "--port", str(receiver_port), "--factory", "receiver.app:create_app"], env, receiver_port),
        ]
        servers = [("baseline", base_port), ("receiver", receiver_port)]
        granian = BIN / "granian"
        if granian.exists():
            port = free_port()
            command = [str(granian), "--interface", "asgi", "--loop", "uvloop", "--no-access-log", "--log-level",
                       "warning", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
            command += ["--factory", "receiver.app:create_app"]
            processes.append(serve(command, env, port))
            servers.append(("receiver on granian", port))
        rounds: dict[str, list[Result]] = {name: [] for name, _ in servers}
        job = 0
        try:
            for _ in range(args.rounds):
                for name, port in servers:
                    result = run(port, PATH, args.connections, args.seconds, job)
                    job += len(result.latencies) + args.connections
                    rounds[name].append(result)
            stored = len(redis.Redis.from_url(server.url).keys(keys.event("*")))
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)
            server.stop()

    def summary(results: list[Result]) -> dict[str, object]:
        return {
            "rate_per_s": statistics.median(r.rate for r in results),
            "p50_ms": statistics.median(r.percentile(0.5) for r in results) * 1000,
            "p99_ms": statistics.median(r.percentile(0.99) for r in results) * 1000,
            "statuses": {
                str(k): sum(r.statuses.get(k, 0) for r in results) for k in {k for r in results for k in r.statuses}
            },
        }

    baseline, receiver = summary(rounds["baseline"]), summary(rounds["receiver"])
    acknowledged = sum(
        r.statuses.get(202, 0) for name, results in rounds.items() if name != "baseline" for r in results
    )
    on_granian = summary(rounds["receiver on granian"]) if "receiver on granian" in rounds else None
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
        },
        "settings": {"rounds": args.rounds, "seconds": args.seconds, "connections": args.connections},
        "baseline": baseline,
        "receiver": receiver,
        "ratio": receiver["rate_per_s"] / baseline["rate_per_s"],  # type: ignore[operator]
        "receiver_on_granian": on_granian,
        "granian_over_uvicorn": on_granian["rate_per_s"] / receiver["rate_per_s"] if on_granian else None,  # type: ignore[operator]
        "acknowledged": acknowledged,
        "stored_in_redis": stored,
    }
    print(f"machine: {report['machine']}")
    named = [("bare 202 baseline", baseline), ("workhooks receiver", receiver)]
    for name, values in named + ([("receiver on granian", on_granian)] if on_granian else []):
        rate, p50, p99 = values["rate_per_s"], values["p50_ms"], values["p99_ms"]
        print(f"{name:<20} {rate:>8.0f} req/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms  statuses {values['statuses']}")
    print(f"ratio receiver/baseline: {report['ratio']:.3f}; acknowledged {acknowledged}, stored in Redis {stored}")
    if on_granian:
        print(f"receiver on granian / on uvicorn: {report['granian_over_uvicorn']:.2f}")
    report_file.write("ingest", report)
    if stored < acknowledged:
        raise SystemExit(f"lost: {acknowledged - stored} acknowledged callbacks are not in Redis")


if __name__ == "__main__":
    main()
