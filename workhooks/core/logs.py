"""structlog, configured once per process: JSON off a terminal (orjson, bytes), readable console on one."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def colour_wanted(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return not os.environ.get("NO_COLOR") and stream.isatty()


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """One log line's JSON: orjson, or the standard library for what orjson refuses (an int past 64 bits,
    a lone surrogate), so a line is never lost to its serializer."""
    try:
        return orjson.dumps(value, default=default, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, default=default or repr).encode("utf-8", "backslashreplace")


class UTCStamper:
    """``timestamp``, as structlog's ``TimeStamper(fmt="iso", utc=True)`` writes it (``2026-12-01T15:43:19.898955Z``),
    with strftime once a second instead of a datetime per line."""

    __slots__ = ("_second",)

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        now = time.time()
        second, text = self._second
        if int(now) != second:
            second = int(now)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        event["timestamp"] = f"{text}.{int((now - second) * 1_000_000):06d}Z"
        return event


class LineWriter:
    """structlog's BytesLogger (a line, then a flush), except that in a running event loop the line waits for
    the end of the loop's turn: the lines one turn writes (a request's each) reach the stream in one write,
    not one each (stderr off a terminal is unbuffered: a syscall per line). A line waits at most that turn, or
    until the process exits; off a loop (threads, the CLI) every line is written at once."""

    __slots__ = ("_file", "_lines", "_lock", "_turn")

    def __init__(self, file: Any) -> None:
        self._file = file
        self._lock = threading.Lock()
        self._lines: list[bytes] = []
        self._turn: asyncio.AbstractEventLoop | None = None  # the loop whose turn will write what is waiting
        atexit.register(self._at_exit)

    def msg(self, message: bytes) -> None:
        loop = asyncio._get_running_loop()
        with self._lock:
            self._lines.append(message + b"\n")
            if loop is not None and loop is not self._turn:  # the first line of this turn: it writes them all
                self._turn = loop
                loop.call_soon(self.flush)
        if loop is None:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines, self._turn = self._lines, [], None
            if not lines:
                return
            data = memoryview(b"".join(lines))
            while data:  # a raw stream (stderr off a terminal) may take part of it
                written = self._file.write(data)
                data = data[written if isinstance(written, int) and written > 0 else len(data) :]
            self._file.flush()

    def _at_exit(self) -> None:
        with contextlib.suppress(ValueError, OSError):  # the stream closed or gone first: nothing to write to
            self.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


def configure_logging(level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UTCStamper(),
    ]
    binary = getattr(sys.stderr, "buffer", None)
    factory: Any
    if sys.stderr.isatty():
        renderer: Any = structlog.dev.ConsoleRenderer(colors=colour_wanted(sys.stderr))
        factory = structlog.PrintLoggerFactory(sys.stderr)
    elif binary is not None:  # bytes straight to the stream's buffer: no str round trip per line
        writer = LineWriter(binary)
        renderer, factory = structlog.processors.JSONRenderer(serializer=dumps), lambda *args: writer
    else:
        renderer = structlog.processors.JSONRenderer(serializer=lambda value, **kw: dumps(value, **kw).decode())
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=False,  # lets structlog.testing.capture_logs() see every line (CachedLogger)
    )


class CachedLogger:
    """A logger assembled once and reused per call, for a line written per request; assembled again
    whenever the processors change (``structlog.configure``, ``capture_logs``), so tests still see it."""

    __slots__ = ("_bound", "_name", "_processors")

    def __init__(self, name: str) -> None:
        self._name = name
        self._processors: object = None
        self._bound: Any = None

    def get(self) -> Any:
        processors = structlog.get_config()["processors"]
        if processors is not self._processors:
            self._bound = structlog.get_logger(self._name).bind()
            self._processors = processors
        return self._bound

    def __getattr__(self, name: str) -> Any:  # log.info(...), as with structlog.get_logger()
        return getattr(self.get(), name)
