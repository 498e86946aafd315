"""A local webhook sink for the benchmarks: answers 204 (after SINK_DELAY_MS), and appends
"<webhook-id> <unix time received> <unix time answered> <status>" to SINK_LOG for each request.

With SINK_RATE (per second) it behaves like a Slack incoming webhook: a token bucket of
SINK_BURST (default 3) refilled at that rate, and 429 with Retry-After: 1 past it.
Assumed, not documented by Slack: its "about one per second, bursts tolerated" (FIELD-NOTES.md) is
taken as a bucket of 3, and the Retry-After it sends as 1 s; our slack sink's default (1/s, burst 1)
must never meet the 429 either way."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

DELAY = float(os.environ.get("SINK_DELAY_MS", "0")) / 1000  # a slow sink: answer after this long
RATE = float(os.environ.get("SINK_RATE", "0"))  # requests per second it accepts (0: any)
BURST = float(os.environ.get("SINK_BURST", "3"))
_log: list[BinaryIO] = []
_bucket = [BURST, time.monotonic()]  # tokens, when last refilled


def received(path: Path) -> list[tuple[str, float]]:
    """What the sink logged: (webhook-id, time received), in arrival order."""
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [(line.split()[0].decode(), float(line.split()[1])) for line in lines if line]


def ids(path: Path) -> list[str]:
    return [webhook_id for webhook_id, _ in received(path)]


def answered(path: Path) -> list[tuple[str, float, float, int]]:
    """(webhook-id, received, answered, status) per request, in the order answered."""
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [(f[0].decode(), float(f[1]), float(f[2]), int(f[3])) for f in (line.split() for line in lines if line)]


def _allowed() -> bool:
    if not RATE:
        return True
    tokens, then = _bucket
    now = time.monotonic()
    tokens = min(BURST, tokens + (now - then) * RATE)
    _bucket[:] = [tokens - 1, now] if tokens >= 1 else [tokens, now]
    return tokens >= 1


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    while (await receive()).get("more_body"):
        pass
    arrived = time.time()
    if DELAY:
        await asyncio.sleep(DELAY)
    if not _log:
        _log.append(open(os.environ["SINK_LOG"], "ab", buffering=0))  # noqa: SIM115 - for the process's lifetime
    headers = dict(scope["headers"])
    status = 204 if _allowed() else 429
    line = b"%s %.6f %.6f %d\n" % (headers.get(b"webhook-id", b"-"), arrived, time.time(), status)
    _log[0].write(line)  # one write(2): lines never interleave
    answer = [(b"retry-after", b"1")] if status == 429 else []
    await send({"type": "http.response.start", "status": status, "headers": answer})
    await send({"type": "http.response.body", "body": b""})
