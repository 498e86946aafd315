"""The receiver's canonical request line: one per request, naming the route template, never the path."""

from __future__ import annotations

import time
from collections.abc import Collection

import structlog
from starlette.types import Scope

from receiver import metrics
from workhooks.core.logs import CachedLogger


class RequestLine:
    """One canonical line per request, naming the route template (never the path: it holds tokens), and
    the callback's count and latency in the metrics. receiver/front.py calls it when the request ends."""

    def __init__(self, sources: Collection[str]) -> None:
        self.sources = sources
        self.log = CachedLogger("workhooks.receiver")

    def write(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None)
        context = structlog.contextvars.get_contextvars()
        path = scope["path"]
        seconds = time.perf_counter() - started
        if (template or path).startswith("/hooks/") or path.startswith("/hooks/"):
            # a 429 from the failure limiter never reached a route: its source is the path's
            name = context.get("source") or path.split("/")[2]
            outcome = context.get("outcome") or f"http_{status}"
            metrics.record_callback(name if name in self.sources else "unknown", outcome, seconds)
        context.pop("route", None)
        if "peer" in scope:  # the trusted proxy it came through
            context = {"peer": scope["peer"], **context}
        self.log.get().info(
            "request",
            method=scope["method"],
            route=template or "(no route)",
            status=status,
            duration_ms=round(seconds * 1000, 2),
            client=(scope.get("client") or ("?",))[0],
            **context,
        )
