"""What durability costs here: Redis AOF appendfsync always vs everysec, and one fsync'd spool append.

Runs the receiver's real ingest script against two private redis-servers (one per policy),
interleaving rounds so both see the same machine noise; prints medians and the ratio.
Usage: python bench/aof_fsync.py [--rounds 5] [--per-round 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.spool import Spool
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy
from workhooks.store import embedded
from workhooks.store.ingest import Ingest, prepare


def submits_per_second(client: redis.Redis, ingest: Ingest, start: int, count: int) -> float:
    began = time.perf_counter()
    for job in range(start, start + count):
        body = b'{"status": ["acp", "aer"], "job_id": %d}' % job
        ingest.submit_sync(
            client, prepare(Event.from_callback("bench", wordy.parse(body, None)), "application/json", body)
        )
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        servers = {mode: embedded.start(Path(folder) / mode, appendfsync=mode) for mode in ("everysec", "always")}
        try:
            clients = {mode: redis.Redis.from_url(server.url) for mode, server in servers.items()}
            ingest, rates = Ingest(), {mode: [] for mode in servers}
            for round_number in range(args.rounds):
                for mode, client in clients.items():
                    rates[mode].append(
                        submits_per_second(client, ingest, round_number * args.per_round, args.per_round)
                    )
            spool, latencies = Spool(Path(folder) / "spool"), []
            sample = prepare(
                Event.from_callback("bench", wordy.parse(b'{"status": ["acp", "aer"], "job_id": 1}', None)), "", b""
            )
            for _ in range(200):
                began = time.perf_counter()
                spool.append(sample)
                latencies.append(time.perf_counter() - began)
            spool.close()
        finally:
            for server in servers.values():
                server.stop()
    everysec, always = statistics.median(rates["everysec"]), statistics.median(rates["always"])
    print(f"redis-server {embedded.redis_binary()}")
    print(f"ingest, appendfsync everysec: {everysec:8.0f} callbacks/s (median of {args.rounds} rounds)")
    print(f"ingest, appendfsync always:   {always:8.0f} callbacks/s  ratio always/everysec = {always / everysec:.2f}")
    print(f"spool append + fsync: median {statistics.median(latencies) * 1000:.2f} ms, "
          f"p99 {sorted(latencies)[int(len(latencies) * 0.99)] * 1000:.2f} ms (200 appends)")  # fmt: skip


if __name__ == "__main__":
    main()
