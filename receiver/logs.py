"""structlog, configured once per process: JSON off a terminal, readable console on one."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receiver import metrics


def configure_logging(level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,  # lets structlog.testing.capture_logs() see every line
    )


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
            if getattr(route, "path", "").startswith("/hooks/"):
                known = context.get("source") in scope["app"].state.config.sources
                outcome = context.get("outcome") or f"http_{status}"
                metrics.record_callback(
                    context["source"] if known else "unknown", outcome, time.perf_counter() - started
                )
            if status == 413 and "reason" not in context:
                context["reason"] = "body over the size limit"
            self.log.info(
                "request",
                method=scope["method"],
                route=getattr(route, "path", "(no route)"),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=(scope.get("client") or ("?",))[0],
                **{key: value for key, value in context.items() if key != "route"},
            )
            structlog.contextvars.clear_contextvars()
