"""The one ASGI layer in front of the routes: who is asking, the failure limiter, the body deadline and
the request's canonical line with its metrics; and a callback goes straight to its endpoint (receiver/hooks.py).

These four were a chain of middlewares, each wrapping ``send`` (and two ``receive``) again: one layer
pays for one wrapper of each instead, per request. What each does stays in its own module:
receiver/clients.py (the client behind trusted proxies), receiver/ratelimit.py (the buckets),
receiver/deadline.py (the timed receive), receiver/logs.py (the line).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Sequence

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver.clients import Network, client_address
from receiver.deadline import timed
from receiver.hooks import Hooks
from receiver.logs import RequestLine
from receiver.ratelimit import EXEMPT, SPENDING, FailureBuckets
from receiver.responses import JSONResponse


class Front:
    def __init__(
        self,
        app: ASGIApp,
        sources: Collection[str],
        body_timeout: float,
        burst: int = 20,
        per_minute: float = 60.0,
        trusted_proxies: Sequence[Network] = (),
        processes: int = 1,
        hooks: Hooks | None = None,
    ) -> None:
        self.app = app
        self.hooks = hooks or Hooks(())
        self.trusted = list(trusted_proxies)
        self.limiter = FailureBuckets(burst, per_minute, processes) if per_minute > 0 else None
        self.body_timeout = body_timeout
        self.line = RequestLine(sources)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        started = time.perf_counter()
        if self.trusted:
            peer = (scope.get("client") or ("unknown", 0))[0]
            forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
            client = client_address(peer, forwarded, self.trusted)
            if client != peer:
                scope = {**scope, "client": (client, 0), "peer": peer}
        limiter = self.limiter if scope["path"] not in EXEMPT else None
        ip = (scope.get("client") or ("unknown",))[0]
        status = 500

        async def front_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if limiter is not None and status in SPENDING:
                    limiter.spend(ip, time.monotonic())
            await send(message)

        try:
            if limiter is not None and (wait := limiter.wait(ip, time.monotonic())) is not None:
                structlog.contextvars.bind_contextvars(outcome="throttled", reason="too many failed requests")
                response = JSONResponse(
                    {"error": "too many failed requests from this address"},
                    status_code=429,
                    headers={"Retry-After": str(wait)},
                )
                await response(scope, receive, front_send)
                return
            deadline = asyncio.get_running_loop().time() + self.body_timeout
            app = self.hooks.route(scope) or self.app  # a callback: straight to its endpoint (receiver/hooks.py)
            await app(scope, timed(receive, deadline, self.body_timeout), front_send)
        finally:
            self.line.write(scope, status, started)
