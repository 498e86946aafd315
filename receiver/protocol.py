"""How uvicorn serves the receiver: bounded request heads, a head read timeout, no proxy headers.

uvicorn's httptools protocol (the fast one, and uvicorn's default when httptools is installed) has no
limit on a request's line and headers and no timeout for reading them: its keep-alive timer runs only
after an answer, and any byte received cancels it, so a client that opens a connection and sends a
header a byte at a time, or 32 MiB of one header line, holds the socket and the memory for as long
as it likes. uvicorn's h11 protocol has a size cap (``h11_max_incomplete_event_size``) but no read
timeout either. This subclass of the httptools protocol adds both, at the smallest layer that sees
the bytes:

- a head (request line and headers) still unfinished after ``max_header_bytes`` is answered 431
  and the connection closed. Bytes are counted per socket read, from the read after the one the
  request began in, so what a head may hold is that limit plus at most two reads (asyncio reads up
  to 256 KiB at a time): bounded, if not to the byte;
- a head must be complete within ``header_timeout`` seconds of the connection opening, or of the
  previous answer on a keep-alive connection (the rest of a refused body still arriving included):
  else 408 if part of a head arrived, and the connection closed either way.

The body is bounded by ``max_body_bytes`` (receiver/hooks.py for callbacks, Starlette for the other
routes, while streaming) and in time by receiver/deadline.py; what the app does once it has the body
is bounded by its own timeouts (Redis).
Not bounded here: a response the client reads slowly (asyncio's write buffer and uvicorn's flow
control pause the app instead), and the number of connections (``limit_concurrency``, left to the
proxy in front).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from workhooks.config.schema import ReceiverSettings


class CoalescedTransport:
    """A connection's transport whose writes wait for the end of the event loop's turn, then go out in one send.

    uvicorn writes an answer's head and body separately (two sends per request), and at once: the answers of
    requests whose Redis write came back were sent before the next batch of callbacks went to Redis, which
    sat idle meanwhile. Waiting for the end of the turn sends that batch first, and each answer in one send
    (bench/ingest.py: +11% callbacks/s, docs/performance.md). Closing sends what waits first; aborting drops it;
    a client's half-close waits for the answer (``BoundedHttpToolsProtocol.eof_received``). Anything else is
    the transport's own."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def is_closing(self) -> bool:  # asked after every answer: not through __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes = ReceiverSettings().max_header_bytes
    header_timeout = ReceiverSettings().header_timeout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_bytes: int | None = None  # bytes of the head read so far; None: not inside a head
        self.head_timer: asyncio.TimerHandle | None = None
        self.half_closed = False  # the client sent its last byte: close once what it asked is answered

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self.head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _refuse(self, status: bytes, reason: bytes) -> None:
        self._cancel_head_timer()
        self.head_bytes = None
        if not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                b"content-length: " + str(len(reason)).encode() + b"\r\n\r\n" + reason
            )
            self.transport.close()

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.head_bytes:
            self._refuse(b"408 Request Timeout", b"request headers not received in time")
        elif not self.transport.is_closing():
            self.transport.close()  # nothing of a request arrived: just close, as the keep-alive timer does

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.writes = CoalescedTransport(transport, self.loop)
        self.transport = self.writes  # type: ignore[assignment]
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.head_bytes is not None:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.head_bytes is not None and self.head_bytes > self.max_header_bytes:
            self._refuse(b"431 Request Header Fields Too Large", b"request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_bytes = 0  # counted from the next read on: the one this began in is let through

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self.head_bytes = None
        super().on_headers_complete()

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The client half-closed. With a whole request still to answer, the connection stays open until it
        is answered (asyncio's default closes at once, and the answer, waiting for the end of the loop's turn,
        would be lost); else it closes now, as before (a body cut short: the app reads a disconnect)."""
        self.writes.flush()  # an answer given already goes before the close
        cycle = self.cycle
        if cycle is None or cycle.response_complete or cycle.more_body:
            return None
        self.half_closed = True
        return True

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # its head was read already
        super().on_response_complete()
        if self.half_closed and not self.pipeline and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # everything the client sent is answered
        elif not pipelined and not self.transport.is_closing():
            self._await_head()


def protocol_for(settings: ReceiverSettings) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with this configuration's bounds (uvicorn instantiates it per connection)."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": settings.max_header_bytes, "header_timeout": settings.header_timeout},
    )


class ServedHttpToolsProtocol(BoundedHttpToolsProtocol):
    """The protocol of each of several receiver processes (`workhooks serve --workers N`). uvicorn sends
    its settings to the processes it starts by pickling them, and a class made by protocol_for cannot be
    pickled (it is no module's attribute): this one is, and each process's app sets its bounds (bound())."""


def bound(settings: ReceiverSettings) -> None:
    """Give ServedHttpToolsProtocol this configuration's bounds (create_app, in each process)."""
    ServedHttpToolsProtocol.max_header_bytes = settings.max_header_bytes
    ServedHttpToolsProtocol.header_timeout = settings.header_timeout


def uvicorn_options(settings: ReceiverSettings, workers: int = 1) -> dict[str, Any]:
    """What `workhooks serve` passes to uvicorn.run besides the app, host and port."""
    return {
        "http": protocol_for(settings) if workers <= 1 else ServedHttpToolsProtocol,
        "workers": workers,
        "proxy_headers": False,  # receiver/clients.py reads X-Forwarded-For, from trusted_proxies only
        "h11_max_incomplete_event_size": settings.max_header_bytes,  # should h11 ever be chosen instead
        "timeout_keep_alive": 5,  # an idle keep-alive connection is closed 5 s after its last answer
        "access_log": False,  # our RequestLog prints route templates; paths hold capability tokens
        "log_level": "warning",
        "timeout_graceful_shutdown": 20,
    }
