"""Log lines reach the stream whole, in order and promptly: at once off an event loop, by the end of the
loop's turn in one write (workhooks/core/logs.py's LineWriter), and never lost to a loop that closed first."""

from __future__ import annotations

import asyncio
import io
import os

from workhooks.core.logs import LineWriter


def _pipe() -> tuple[int, LineWriter, io.FileIO]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    stream = os.fdopen(write, "wb", buffering=0)  # unbuffered, as sys.stderr.buffer is off a terminal
    return read, LineWriter(stream), stream


def _available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_off_a_loop_every_line_is_written_at_once() -> None:
    read, writer, stream = _pipe()
    try:
        writer.msg(b'{"event":"one"}')
        assert _available(read) == b'{"event":"one"}\n'
    finally:
        os.close(read)
        stream.close()


def test_in_a_loop_the_lines_of_one_turn_arrive_together_when_it_ends() -> None:
    read, writer, stream = _pipe()
    seen: list[bytes] = []

    async def requests() -> None:
        for n in range(3):
            writer.msg(b'{"event":"request","n":%d}' % n)
        seen.append(_available(read))  # the turn is not over: nothing written yet
        await asyncio.sleep(0)
        seen.append(_available(read))

    try:
        asyncio.run(requests())
        assert seen == [b"", b"".join(b'{"event":"request","n":%d}\n' % n for n in range(3))]
    finally:
        os.close(read)
        stream.close()


def test_lines_left_by_a_loop_that_ended_are_written_with_the_next_line() -> None:
    read, writer, stream = _pipe()

    async def last_request() -> None:
        writer.msg(b'{"event":"request"}')

    try:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(last_request())
        loop.close()  # before the turn that would have written it
        writer.msg(b'{"event":"stopped"}')  # off a loop: at once, with what was waiting
        assert _available(read) == b'{"event":"request"}\n{"event":"stopped"}\n'
    finally:
        os.close(read)
        stream.close()
