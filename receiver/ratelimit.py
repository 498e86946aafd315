"""Slow down whoever keeps failing to authenticate: a token bucket per client IP, drained only by 401 and 404.

A client that guesses tokens, keys or source names runs out and gets 429 for everything until its
bucket refills. An authenticated request never spends a token, whatever its answer: a platform
sending a status we do not know yet gets its 400s (quarantined), not a 429 for its next valid
callback. The client is ``scope["client"]``, which receiver/clients.py resolved through trusted
proxies only. Memory is bounded (least recently seen IPs forgotten).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_CLIENTS = 100_000
EXEMPT = frozenset({"/healthz", "/readyz", "/openapi.json", "/metrics"})  # no credential to guess
SPENDING = frozenset({401, 404})  # failed to authenticate, or no such source: nothing vouched for the request


class FailureLimiter:
    def __init__(self, app: ASGIApp, burst: int = 20, per_minute: float = 60.0) -> None:
        self.app = app
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # ip -> (tokens, at)

    def _tokens(self, ip: str, now: float) -> float:
        tokens, at = self.buckets.get(ip, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def _spend(self, ip: str, now: float) -> None:
        self.buckets[ip] = (self._tokens(ip, now) - 1.0, now)
        self.buckets.move_to_end(ip)
        while len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT or self.rate <= 0:
            await self.app(scope, receive, send)
            return
        ip = (scope.get("client") or ("unknown",))[0]
        now = time.monotonic()
        if ip in self.buckets and (tokens := self._tokens(ip, now)) < 1.0:
            wait = math.ceil((1.0 - tokens) / self.rate)
            structlog.contextvars.bind_contextvars(outcome="throttled", reason="too many failed requests")
            response = JSONResponse(
                {"error": "too many failed requests from this address"},
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
            await response(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in SPENDING:
                self._spend(ip, time.monotonic())
            await send(message)

        await self.app(scope, receive, watch)
