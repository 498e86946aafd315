"""A local webhook sink for the benchmarks: answers 204 (after SINK_DELAY_MS), appends each webhook-id to SINK_LOG."""

from __future__ import annotations

import asyncio
import os
from typing import Any

DELAY = float(os.environ.get("SINK_DELAY_MS", "0")) / 1000  # a slow sink: answer after this long
_log = open(os.environ["SINK_LOG"], "ab", buffering=0)  # noqa: SIM115 - open for the process's lifetime


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    while (await receive()).get("more_body"):
        pass
    if DELAY:
        await asyncio.sleep(DELAY)
    headers = dict(scope["headers"])
    _log.write(headers.get(b"webhook-id", b"-") + b"\n")  # one write(2) per line: lines never interleave
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
