"""Ingest benchmark: durable, deduplicated acknowledgements vs a bare-202 Starlette baseline, driven by wrk.

Starts its own redis-server, the baseline app (bench/bare_app.py under uvicorn: uvloop, httptools,
access log off) and the receiver exactly as the Procfile's ``web`` runs it (``workhooks serve``: default
log level, its per-request line written to a file, the failure limiter on), then interleaves rounds of
each in one run, so the ratio is read from the same minutes of this (shared) machine. With
``workhooks serve --workers`` available, the receiver also runs as two processes.

The load generator is wrk (C, one thread, outside the servers' interpreters), with bench/ingest.lua
giving every request a distinct callback, Wordy and Shared Workforce in turn. When wrk is missing the
bench installs it (``apt-get install -y wrk``, as root); only if that fails does it fall back to the
Python driver (bench/load.py, Wordy bodies only), which shares the cores and caps the baseline: the
report then says so. Afterwards every acknowledged callback (2xx) is counted in Redis.

Reported per server: requests/s, p50/p99 (wrk's, per round, median over rounds), non-2xx answers,
CPU per request (the server's processes, from /proc; Redis's own from INFO, and what its AOF rewrites
took in those rounds: they share the cores), and for the receiver the marginal cost per callback (its
time per request minus the baseline's). Writes var/bench/ingest-<time>.json.

    python bench/ingest.py             # 5 rounds of 10 s each server, 32 connections
    python bench/ingest.py --quick     # what CI runs: 2 rounds of 2 s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report as report_file  # noqa: E402
from bench.load import run as python_run  # noqa: E402
from workhooks.cli.local import descendants  # noqa: E402
from workhooks.store import embedded, keys  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a throwaway token for a private test server
KEY = "bench-key-0123456789abcdef"
PATH = f"/hooks/wordy-main/{TOKEN}"
BIN = Path(sys.executable).parent
LUA = Path(__file__).resolve().parent / "ingest.lua"
ROUND_STRIDE = 10**9  # callback numbers of one round never meet another's (bench/ingest.lua)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(
    command: list[str], env: dict[str, str], port: int, log: Path | None = None, cwd: Path = ROOT, wait: float = 30
) -> subprocess.Popen[bytes]:
    """Start a server and wait (at most ``wait`` seconds) until it answers on ``port`` (any status)."""
    stderr = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command[0]} did not start on port {port}")


def receiver_env(folder: Path, redis_url: str) -> dict[str, str]:
    """The environment the benches run the receiver in: both platforms' sources, its spool in ``folder``,
    the default log level and failure limit."""
    config = folder / "workhooks.yaml"
    config.write_text(
        f"sources:\n  wordy-main: {{platform: wordy, token: {TOKEN}}}\n"
        f"  swf: {{platform: sharedworkforce, api_key: {KEY}}}\n"
        f"receiver: {{spool_dir: {folder}/spool}}\n"  # the default failure limit: on
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_LEVEL", "WEB_CONCURRENCY")}
    return env | {"REDIS_URL": redis_url, "WORKHOOKS_CONFIG": str(config), "NO_COLOR": "1"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and every process below it (Linux /proc; 0 elsewhere)."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def find_wrk() -> tuple[str | None, str]:
    """wrk's path and how it was had; installed from the distribution's packages when absent."""
    found = shutil.which("wrk")
    if found:
        return found, "wrk (found on PATH)"
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("wrk is not installed: apt-get install -y wrk", flush=True)
        for command in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "wrk"]):  # fmt: skip
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=False)
            if found := shutil.which("wrk"):
                return found, "wrk (installed now with apt-get)"
    return None, "no wrk (not on PATH, and apt-get could not install it)"


@dataclass
class Round:
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    cpu_s: float
    statuses: dict[str, int] = field(default_factory=dict)
    redis_cpu_s: float = 0.0  # the server's own process, the same seconds
    redis_children_cpu_s: float = 0.0  # its forked children: AOF rewrites

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / max(1, self.requests) * 1e6


def redis_cpu(client: redis.Redis) -> tuple[float, float]:
    """CPU seconds Redis has used: its own process, and its children (AOF rewrites, which share the cores)."""
    info = client.info("cpu")
    return (float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
            float(info["used_cpu_sys_children"]) + float(info["used_cpu_user_children"]))  # fmt: skip


def wrk_round(wrk: str, port: int, connections: int, seconds: float, first: int, mode: str) -> dict[str, Any]:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA),
               f"http://127.0.0.1:{port}", "--", str(first), TOKEN, KEY, mode]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
    return result


def one_round(
    wrk: str | None, pid: int, port: int, args: argparse.Namespace, first: int, store: redis.Redis | None = None
) -> Round:
    """One round of load; with ``store`` (the bench's Redis), Redis's CPU in the same seconds too."""
    redis_before = redis_cpu(store) if store is not None else (0.0, 0.0)
    found = _one_round(wrk, pid, port, args, first)
    if store is not None:
        main, children = redis_cpu(store)
        found.redis_cpu_s, found.redis_children_cpu_s = main - redis_before[0], children - redis_before[1]
    return found


def _one_round(wrk: str | None, pid: int, port: int, args: argparse.Namespace, first: int) -> Round:
    before = cpu_seconds(pid)
    if wrk is not None:
        found = wrk_round(wrk, port, args.connections, args.seconds, first, args.mode)
        cpu = cpu_seconds(pid) - before
        errors = sum(found[name] for name in ("connect_errors", "read_errors", "write_errors", "timeouts"))
        return Round(
            rate=found["requests"] / (found["duration_us"] / 1e6),
            p50_ms=found["p50_us"] / 1000,
            p99_ms=found["p99_us"] / 1000,
            requests=found["requests"],
            non_2xx=found["non_2xx_3xx"],
            socket_errors=errors,
            cpu_s=cpu,
        )
    result = python_run(port, PATH, args.connections, args.seconds, first)
    cpu = cpu_seconds(pid) - before
    return Round(
        rate=result.rate,
        p50_ms=result.percentile(0.5) * 1000,
        p99_ms=result.percentile(0.99) * 1000,
        requests=len(result.latencies),
        non_2xx=sum(count for status, count in result.statuses.items() if not 200 <= status < 300),
        socket_errors=0,
        cpu_s=cpu,
        statuses={str(status): count for status, count in result.statuses.items()},
    )


def summary(rounds: list[Round]) -> dict[str, Any]:
    return {
        "rate_per_s": statistics.median(r.rate for r in rounds),
        "rates_per_s": [round(r.rate) for r in rounds],
        "p50_ms": statistics.median(r.p50_ms for r in rounds),
        "p99_ms": statistics.median(r.p99_ms for r in rounds),
        "p99_ms_worst": max(r.p99_ms for r in rounds),
        "requests": sum(r.requests for r in rounds),
        "non_2xx": sum(r.non_2xx for r in rounds),
        "socket_errors": sum(r.socket_errors for r in rounds),
        "cpu_us_per_request": statistics.median(r.cpu_us_per_request for r in rounds),
        "redis_cpu_us_per_request": statistics.median(r.redis_cpu_s / max(1, r.requests) * 1e6 for r in rounds),
        "redis_aof_rewrite_cpu_s": sum(r.redis_children_cpu_s for r in rounds),
    }


def profiled_round(wrk: str | None, pid: int, port: int, args: argparse.Namespace, first: int) -> dict[str, Any]:
    """One more round on the receiver, sampled by py-spy: collapsed stacks written beside the report."""
    py_spy = shutil.which("py-spy", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if py_spy is None:
        return {"error": "py-spy not installed (pip install py-spy)"}
    report_file.OUT.mkdir(parents=True, exist_ok=True)
    out = report_file.OUT / f"ingest-profile-{report_file.stamp()}.txt"
    command = [py_spy, "record", "--pid", str(pid), "--duration", f"{args.seconds:g}", "--rate", "250",
               "--format", "raw", "--output", str(out)]  # fmt: skip
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attached
    found = one_round(wrk, pid, port, args, first)
    _, error = sampler.communicate(timeout=args.seconds + 60)
    return {
        "stacks": str(out),
        "requests": found.requests - found.non_2xx,
        "rate_per_s": found.rate,
        "cpu_us_per_request": found.cpu_us_per_request,
        "py_spy": error.decode(errors="replace")[-300:],
    }


def supports_workers() -> bool:
    help_text = subprocess.run([str(BIN / "workhooks"), "serve", "--help"], capture_output=True, text=True).stdout
    return "--workers" in help_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--mode", choices=("both", "wordy", "sharedworkforce"), default="both",
                        help="which platforms' callbacks wrk sends (in turn)")  # fmt: skip
    parser.add_argument("--no-two", action="store_true", help="skip the receiver as two processes")
    parser.add_argument("--python-driver", action="store_true", help="use bench/load.py even if wrk is there")
    parser.add_argument("--profile", action="store_true",
                        help="then one more receiver round under py-spy (pip install py-spy)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 2.0

    wrk, generator = (None, "the Python driver (asked for)") if args.python_driver else find_wrk()
    if wrk is None:
        generator = (f"{generator}: bench/load.py, Python/uvloop, Wordy callbacks only; it shares the cores with "
                     "the servers and caps the baseline, so the ratio is flattered")  # fmt: skip
    print(f"load generator: {generator}", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        server = embedded.start(Path(folder) / "redis")
        env = receiver_env(Path(folder), server.url)
        uvicorn = [str(BIN / "uvicorn"), "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"]
        base_port, receiver_port = free_port(), free_port()
        servers: list[tuple[str, int, subprocess.Popen[bytes], Path | None]] = []
        processes: list[subprocess.Popen[bytes]] = []
        try:
            bare = serve([*uvicorn, "--port", str(base_port), "bench.bare_app:app"], env, base_port)
            processes.append(bare)
            servers.append(("baseline", base_port, bare, None))
            log = Path(folder) / "receiver.log"
            one = serve([str(BIN / "workhooks"), "serve", "--port", str(receiver_port)], env, receiver_port, log)
            processes.append(one)
            servers.append(("receiver", receiver_port, one, log))
            if not args.no_two and supports_workers():
                port, log2 = free_port(), Path(folder) / "receiver2.log"
                two = serve([str(BIN / "workhooks"), "serve", "--port", str(port), "--workers", "2"], env, port, log2)
                processes.append(two)
                servers.append(("receiver, 2 processes", port, two, log2))
            rounds: dict[str, list[Round]] = {name: [] for name, *_ in servers}
            number = 0
            store = redis.Redis.from_url(server.url)
            for _ in range(args.rounds):
                for name, port, process, _log in servers:
                    number += 1
                    rounds[name].append(one_round(wrk, process.pid, port, args, number * ROUND_STRIDE, store))
            store.close()
            if args.profile:
                profile = profiled_round(wrk, one.pid, receiver_port, args, (number + 1) * ROUND_STRIDE)
            time.sleep(0.5)  # answers still in flight when wrk stopped
            client = redis.Redis.from_url(server.url)
            stored = sum(1 for _ in client.scan_iter(match=keys.event("*"), count=10_000))
            client.close()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(25)
                except subprocess.TimeoutExpired:
                    process.kill()
            server.stop()
        log_lines = {
            name: sum(1 for line in log.open("rb") if b'"request"' in line and b"/hooks/" in line)
            for name, _, _, log in servers
            if log is not None
        }

    figures = {name: summary(found) for name, found in rounds.items()}
    baseline = figures["baseline"]
    for name, values in figures.items():
        if name == "baseline":
            continue
        values["ratio"] = values["rate_per_s"] / baseline["rate_per_s"]
        values["ratios_per_round"] = [
            round(r.rate / b.rate, 3) for r, b in zip(rounds[name], rounds["baseline"], strict=True)
        ]
        values["marginal_us_per_callback"] = (1 / values["rate_per_s"] - 1 / baseline["rate_per_s"]) * 1e6
        values["cpu_us_per_callback_minus_baseline"] = values["cpu_us_per_request"] - baseline["cpu_us_per_request"]
        values["request_log_lines"] = log_lines.get(name)
    acknowledged = sum(r.requests - r.non_2xx for name, found in rounds.items() if name != "baseline" for r in found)
    if args.profile:
        acknowledged += profile.get("requests", 0)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "load_average_after": os.getloadavg(),
        },
        "load_generator": generator,
        "settings": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "connections": args.connections,
            "mode": args.mode,
            "receiver": "workhooks serve, default log level, default failure limit",
        },
        "servers": figures,
        "acknowledged": acknowledged,
        "stored_in_redis": stored,
        "profile": profile if args.profile else None,
    }
    print(f"machine: {report['machine']}")
    for name, values in figures.items():
        line = (f"{name:<22} {values['rate_per_s']:>8.0f} req/s  p50 {values['p50_ms']:.1f} ms  "
                f"p99 {values['p99_ms']:.1f} ms  non-2xx {values['non_2xx']}  socket errors {values['socket_errors']}  "
                f"CPU {values['cpu_us_per_request']:.0f} µs/request (Redis {values['redis_cpu_us_per_request']:.0f}, "
                f"its AOF rewrites {values['redis_aof_rewrite_cpu_s']:.1f} s)")  # fmt: skip
        if "ratio" in values:
            line += (f"  ratio {values['ratio']:.3f} {values['ratios_per_round']}  marginal "
                     f"{values['marginal_us_per_callback']:.0f} µs/callback")  # fmt: skip
        print(line)
    print(f"acknowledged (2xx) {acknowledged}, stored in Redis {stored}; request log lines {log_lines}")
    report_file.write("ingest", report)
    if stored < acknowledged:
        raise SystemExit(f"lost: {acknowledged - stored} acknowledged callbacks are not in Redis")


if __name__ == "__main__":
    main()
