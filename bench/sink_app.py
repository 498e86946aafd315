"""A local webhook sink for the benchmarks: answers 204 (after SINK_DELAY_MS), and appends
"<webhook-id> <unix time received>" to SINK_LOG for each webhook."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

DELAY = float(os.environ.get("SINK_DELAY_MS", "0")) / 1000  # a slow sink: answer after this long
_log: list[BinaryIO] = []


def received(path: Path) -> list[tuple[str, float]]:
    """What the sink logged: (webhook-id, time received), in arrival order."""
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [(line.split()[0].decode(), float(line.split()[1])) for line in lines if line]


def ids(path: Path) -> list[str]:
    return [webhook_id for webhook_id, _ in received(path)]


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
    _log[0].write(b"%s %.6f\n" % (headers.get(b"webhook-id", b"-"), arrived))  # one write(2): lines never interleave
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
