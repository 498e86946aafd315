"""The admin API (/admin/api/...) and the web console (/admin/) that uses it.

Mounted into the receiver's app by workhooks/app.py when `admin.token` is set; every API call
needs "Authorization: Bearer <token>" (compared in constant time). It lives here, beside the
CLI, because it reads what workers write: the receiver package never imports workers.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Any

import redis
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver import keys, metrics, quarantine
from receiver.config import Config
from receiver.connection import connect
from receiver.events import Event, Phase
from workers import delivery, eventlog, state

log = structlog.get_logger("workhooks.admin")
MAX_PAGE = 200
PHASES = set(Phase.__args__)  # type: ignore[attr-defined]


class BearerToken:
    """401 for any /api/ request without the configured token; the console page itself is public."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/api/", "/admin/api/")):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                structlog.contextvars.bind_contextvars(outcome="rejected", reason="admin token missing or wrong")
                response = JSONResponse({"error": "admin token missing or wrong"}, 401, {"www-authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _bad(reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=400)


def _delivery(item: delivery.Delivery) -> dict[str, Any]:
    return {
        "id": item.id,
        "event_id": item.event_id,
        "sink": item.sink,
        "status": item.status,
        "attempts": item.attempts,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "last_error": item.last_error,
        "last_status_code": item.last_status_code,
        "next_attempt_at": item.next_attempt_at,
    }


class Admin:
    def __init__(self, config: Config, redis_url: str) -> None:
        self.config = config
        self.connection: redis.Redis = connect(redis_url)

    # sync endpoints: Starlette runs them in its threadpool, so redis-py's blocking client is fine

    def list_events(self, request: Request) -> Response:
        query = request.query_params
        try:
            limit = min(int(query.get("limit", 50)), MAX_PAGE)
            since = float(query.get("since", 0))
        except ValueError:
            return _bad("limit and since must be numbers (since: a Unix time)")
        if query.get("phase") and query["phase"] not in PHASES:
            return _bad(f"phase must be one of {sorted(PHASES)}")
        if query.get("status") and query["status"] not in eventlog.STATUSES:
            return _bad(f"status must be one of {list(eventlog.STATUSES)}")
        cursor = query.get("cursor")
        if cursor and not _valid_cursor(cursor):
            return _bad("cursor is not one this API returned")
        filters = eventlog.Filters(
            query.get("source"), query.get("type"), query.get("subject"), query.get("phase"), since, query.get("status")
        )
        found, following = eventlog.find(self.connection, filters, self.config.sinks, max(limit, 1), cursor)
        items = [
            {**item.event.to_cloudevent(), "received_at": item.received_at, "status": item.status,
             "deliveries": item.deliveries}
            for item in found
        ]  # fmt: skip
        return JSONResponse({"items": items, "next_cursor": following})

    def show_event(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        raw = self.connection.get(keys.event(event_id))
        if raw is None:
            return JSONResponse({"error": "no such event (unknown or expired)"}, status_code=404)
        event = Event.from_json(raw)
        stored = self.connection.hgetall(keys.raw(event_id))
        payload = {_text(k): _text(v) for k, v in stored.items()}
        opened = [delivery.get(self.connection, delivery.delivery_id(event_id, sink)) for sink in self.config.sinks]
        current = state.load(self.connection, event.source, event.subject)
        return JSONResponse(
            {
                "event": event.to_cloudevent(),
                "raw": payload,  # redacted before it was stored
                "state": {k: v for k, v in (current or {}).items() if k != "events"} or None,
                "deliveries": [_delivery(item) for item in opened if item is not None],
                "attempts": delivery.attempts(self.connection, event_id),
            }
        )

    def show_state(self, request: Request) -> Response:
        current = state.load(self.connection, request.path_params["source"], request.path_params["subject"])
        if current is None:
            return JSONResponse({"error": "no state for that source and subject"}, status_code=404)
        return JSONResponse(current)

    def dead_letters(self, request: Request) -> Response:
        sink = request.query_params.get("sink")
        items = delivery.list_deliveries(self.connection, True, sink, 0, limit=MAX_PAGE)
        return JSONResponse({"items": [_delivery(item) for item in items]})

    def replay_delivery(self, request: Request) -> Response:
        outcome = delivery.replay(self.connection, request.path_params["delivery_id"])
        log.info("admin_replay", delivery=request.path_params["delivery_id"], outcome=outcome)
        status = {"queued": 202, "not found": 404}.get(outcome, 409)
        return JSONResponse({"outcome": outcome}, status_code=status)

    def list_quarantine(self, request: Request) -> Response:
        items = quarantine.list_items(self.connection, limit=MAX_PAGE)
        return JSONResponse(
            {
                "items": [
                    {"id": item.id, "source": item.source, "reason": item.reason, "content_type": item.content_type,
                     "received_at": item.received_at, "body": item.body.decode("utf-8", "replace")}
                    for item in items
                ]
            }
        )  # fmt: skip

    def replay_quarantined(self, request: Request) -> Response:
        ok, what = quarantine.replay(self.connection, self.config, request.path_params["item_id"])
        log.info("admin_quarantine_replay", item=request.path_params["item_id"], outcome=what)
        return JSONResponse({"outcome": what}, status_code=202 if ok else 409 if "parsed" in what else 404)

    def health(self, request: Request) -> Response:
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.hgetall(metrics.WORKER_COUNTERS)
            metrics.ask_backlog(pipe)
            pipe.zcard(delivery.DEAD_INDEX)
            pipe.scard("rq:workers")
            for name in self.config.sources:
                pipe.hgetall(keys.poll_status(name))
            counters, jobs, _, waiting, _, dead, workers, *polls = pipe.execute()
        depth = jobs + waiting  # as workhooks_queue_depth counts it
        per_sink: dict[str, dict[str, int]] = {name: {} for name in self.config.sinks}
        for key, value in counters.items():
            name, *labels = key.decode().split(metrics.SEPARATOR)
            if name == "workhooks_deliveries" and labels[0] in per_sink:
                per_sink[labels[0]][labels[1]] = int(float(value))
        outcomes = ("delivered", "failed", "dead")
        sinks = [
            {"name": name, "type": self.config.sinks[name].type, **{o: counts.get(o, 0) for o in outcomes}}
            for name, counts in per_sink.items()
        ]
        sources = []
        for (name, source), status in zip(self.config.sources.items(), polls, strict=True):
            text = {k.decode(): v.decode() for k, v in status.items()}
            sources.append({"name": name, "platform": source.platform, "last_ok_at": text.get("last_ok_at"),
                            "last_error": text.get("last_error") or None})  # fmt: skip
        return JSONResponse(
            {"queue_depth": depth, "dead_letters": dead, "workers": workers, "sinks": sinks, "sources": sources}
        )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _valid_cursor(cursor: str) -> bool:
    bound, _, offset = cursor.partition(":")
    try:
        float(bound)
    except ValueError:
        return False
    return offset.isdigit()


def console(request: Request) -> Response:
    page = resources.files("workhooks").joinpath("console.html").read_text()
    return HTMLResponse(page, headers={"content-security-policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                       "script-src 'unsafe-inline'; img-src 'self' data:", "x-frame-options": "DENY",
                                       "referrer-policy": "no-referrer"})  # fmt: skip


def create_admin(config: Config, redis_url: str) -> Starlette | None:
    """The /admin sub-application, or None when no admin token is configured."""
    if config.admin.token is None:
        return None
    admin = Admin(config, redis_url)
    app = Starlette(
        routes=[
            Route("/", console, methods=["GET"]),
            Route("/api/events", admin.list_events, methods=["GET"]),
            Route("/api/events/{event_id}", admin.show_event, methods=["GET"]),
            Route("/api/state/{source}/{subject:path}", admin.show_state, methods=["GET"]),
            Route("/api/dead-letters", admin.dead_letters, methods=["GET"]),
            Route("/api/deliveries/{delivery_id}/replay", admin.replay_delivery, methods=["POST"]),
            Route("/api/quarantine", admin.list_quarantine, methods=["GET"]),
            Route("/api/quarantine/{item_id}/replay", admin.replay_quarantined, methods=["POST"]),
            Route("/api/health", admin.health, methods=["GET"]),
        ]
    )
    app.add_middleware(BearerToken, token=config.admin.token.get_secret_value())
    return app
