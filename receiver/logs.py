"""The receiver's canonical request line: one per request, naming the route template, never the path."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver import metrics


class RequestLog:
    """One canonical line per request, naming the route template (never the path: it holds tokens)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("workhooks.receiver")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            context = structlog.contextvars.get_contextvars()
            if getattr(route, "path", "").startswith("/hooks/") or scope["path"].startswith("/hooks/"):
                # a 429 from the failure limiter never reached a route: its source is the path's
                name = context.get("source") or scope["path"].split("/")[2]
                known = name in scope["app"].state.config.sources
                outcome = context.get("outcome") or f"http_{status}"
                metrics.record_callback(name if known else "unknown", outcome, time.perf_counter() - started)
            self.log.info(
                "request",
                method=scope["method"],
                route=getattr(route, "path", "(no route)"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=(scope.get("client") or ("?",))[0],
                **({"peer": scope["peer"]} if "peer" in scope else {}),  # the trusted proxy it came through
                **{key: value for key, value in context.items() if key != "route"},
            )
            structlog.contextvars.clear_contextvars()
