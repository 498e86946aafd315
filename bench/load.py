"""A small HTTP/1.1 load driver: N keep-alive connections, each sending the next request as soon as
the previous answer arrived, for a fixed time. Every request body is distinct (a new job id), so
the receiver stores each one instead of answering "duplicate".

Python rather than wrk: bodies must differ per request and nothing needs installing; the driver
shares the machine with the server, which is why results are only read as ratios within one run.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length: its status and body."""
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(status_line.split(b" ", 2)[1]), await reader.readexactly(length)


async def _connection(port: int, path: str, bodies: itertools.count[int], deadline: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
    try:
        while time.perf_counter() < deadline:
            body = b'{"status": ["acp", "aer"], "job_id": %d}' % next(bodies)
            started = time.perf_counter()
            writer.write(f"{head}{len(body)}\r\n\r\n".encode() + body)
            status, _ = await read_answer(reader)
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


def run(port: int, path: str, connections: int, seconds: float, first_job: int) -> Result:
    """Drive the server for `seconds`; job ids start at `first_job` so rounds never repeat a callback."""
    import uvloop

    result = Result(seconds)
    bodies = itertools.count(first_job)

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, path, bodies, deadline, result) for _ in range(connections)))

    uvloop.run(main())
    return result
