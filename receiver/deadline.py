"""A body must arrive within `receiver.body_timeout` seconds of its headers, or the answer is 408.

uvicorn reads a body only as fast as the client sends it and never times that out, so a client that
sends headers and then a byte a minute holds a connection, and a handler, for ever. The deadline is
on the whole body, not on each read: a trickle that keeps every read short still runs out of time.
The answer closes the connection (the rest of the body is never read). Reads after the body (the
wait for a disconnect) are not timed. receiver/front.py wraps each request's ``receive`` in this.
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive


class BodyTimeoutError(Exception):
    """The request's body did not arrive within the deadline."""


def timed(receive: Receive, deadline: float, timeout: float) -> Receive:
    """``receive``, raising BodyTimeoutError once the body is still unread at ``deadline`` (loop time).

    One timer per read that cancels the reading task if it fires, as ``asyncio.timeout_at`` does, but
    without its context manager's bookkeeping, which cost more than the read itself when the body is there.
    """
    reading = True

    async def timed_receive() -> Message:
        nonlocal reading
        if not reading:
            return await receive()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = loop.call_at(deadline, expire)
        try:
            message = await receive()
        except asyncio.CancelledError:
            if expired and task.uncancel() == 0:
                raise BodyTimeoutError(f"request body not received within {timeout:g} s") from None
            raise
        finally:
            timer.cancel()
        reading = message["type"] == "http.request" and message.get("more_body", False)
        return message

    return timed_receive
