"""A body must arrive within `receiver.body_timeout` seconds of its headers, or the answer is 408.

uvicorn reads a body only as fast as the client sends it and never times that out, so a client that
sends headers and then a byte a minute holds a connection, and a handler, for ever. The deadline is
on the whole body, not on each read: a trickle that keeps every read short still runs out of time.
The answer closes the connection (the rest of the body is never read). Reads after the body (the
wait for a disconnect) are not timed.
"""

from __future__ import annotations

import time

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTimeoutError(Exception):
    """The request's body did not arrive within the deadline."""


class BodyDeadline:
    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout
        reading = True

        async def timed_receive() -> Message:
            nonlocal reading
            if not reading:
                return await receive()
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                raise BodyTimeoutError(f"request body not received within {self.timeout:g} s")
            reading = message["type"] == "http.request" and message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
