"""The admin API (/admin/api/...) and the web console (/admin/) that uses it.

Mounted into the receiver's app by workhooks/app.py when `admin.token` is set; every API call
needs "Authorization: Bearer <token>" (compared in constant time). It lives here, beside the
CLI, because it reads what workers write: the receiver package never imports workers.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from importlib import resources
from typing import Any, get_args

import redis
import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.openapi import ERROR, json_answer
from receiver.routes import http_error
from workers import confirmation, delivery, eventlog, router, state, work
from workhooks.config.schema import Config
from workhooks.core.clock import utc_now
from workhooks.core.events import Event, Phase
from workhooks.core.media import ascii_integer
from workhooks.store import actions, health, keys, outbox, quarantine
from workhooks.store.connection import connect

log = structlog.get_logger("workhooks.admin")
MAX_PAGE = 200
MAX_REASON = 200
MAX_TEXT = 3000
ACTION_WAIT = 5.0  # seconds POST /api/actions waits for the worker's answer
PHASES = set(get_args(Phase))


class BearerToken:
    """401 for any /api/ request without the configured token; the console page itself is public."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/api/", "/admin/api/")):
            # Exactly one Authorization header: with two, which one a proxy or framework reads is anyone's guess.
            given = [value for name, value in scope["headers"] if name == b"authorization"]
            if len(given) != 1 or not hmac.compare_digest(given[0], self.expected):
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
        if not math.isfinite(since):
            return _bad("since must be a finite number (a Unix time)")
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

    def list_mismatches(self, request: Request) -> Response:
        items = confirmation.list_mismatches(self.connection, limit=MAX_PAGE)
        return JSONResponse(
            {"items": [{"event": item.event.to_cloudevent(), "claimed": item.claimed, "actual": item.actual,
                        "at": item.at} for item in items]}
        )  # fmt: skip

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

    def list_sinks(self, request: Request) -> Response:
        found = health.read(self.connection, [], self.config.sinks)
        return JSONResponse({"items": found.sink_rows(self.config)})

    async def pause_sink(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.config.sinks:
            return JSONResponse({"error": f"no sink named {name!r}"}, status_code=404)
        try:
            given = await request.json() if await request.body() else {}
        except ValueError:
            return _bad('the body must be JSON: {"reason": "..."} or nothing')
        reason = given.get("reason", "") if isinstance(given, dict) else None
        if not isinstance(reason, str):
            return _bad("reason must be a string")
        reason = " ".join(reason.split())[:MAX_REASON] or "paused from the admin API"
        await run_in_threadpool(outbox.pause, self.connection, name, reason, utc_now())  # redis-py blocks
        log.info("admin_sink_paused", sink=name, reason=reason)
        return JSONResponse({"outcome": "paused"}, status_code=200)

    def resume_sink(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.config.sinks:
            return JSONResponse({"error": f"no sink named {name!r}"}, status_code=404)
        was = outbox.resume(self.connection, name)
        log.info("admin_sink_resumed", sink=name, was_paused=was)
        return JSONResponse({"outcome": "resumed" if was else "not paused"}, status_code=200)

    def list_work(self, request: Request) -> Response:
        query = request.query_params
        if query.get("phase") and query["phase"] not in PHASES:
            return _bad(f"phase must be one of {sorted(PHASES)}")
        limit = ascii_integer(query.get("limit", "100"))
        if limit is None:
            return _bad("limit must be a number")
        found = work.rows(self.connection, self.config, query.get("phase"), query.get("source"), min(limit, MAX_PAGE))
        return JSONResponse({"items": found})

    def show_work(self, request: Request) -> Response:
        source, subject = request.path_params["source"], request.path_params["subject"]
        found = work.timeline(self.connection, self.config, source, subject)
        if found is None:
            return JSONResponse({"error": "no such subject (unknown or expired)"}, status_code=404)
        return JSONResponse(found)

    async def actions(self, request: Request) -> Response:
        """GET: the newest actions; POST: take one (one route, so that a 405 names both methods)."""
        if request.method == "POST":
            return await self.take_action(request)
        recent = await run_in_threadpool(actions.recent, self.connection, MAX_PAGE)
        return JSONResponse({"items": [record.as_dict() for record in recent]})

    async def take_action(self, request: Request) -> Response:
        """POST {source, subject, action, text?, stay?, request_id?}: asked for, carried out by a worker; the
        answer within a few seconds (202 while it is still on its way)."""
        try:
            given = await request.json()
        except ValueError:
            return _bad('the body must be JSON: {"source", "subject", "action", "text"?, "stay"?, "request_id"?}')
        fields = ("source", "subject", "action", "text", "stay", "request_id")
        if not isinstance(given, dict) or not all(isinstance(given.get(name, ""), str) for name in fields):
            return _bad("source, subject and action are required strings; text, stay and request_id are strings")
        if not all(given.get(name) for name in fields[:3]) or len(given.get("text", "")) > MAX_TEXT:
            return _bad(f"source, subject and action are required; text is at most {MAX_TEXT} characters")
        try:
            record, new = await run_in_threadpool(
                work.ask, self.connection, self.config, given["source"], given["subject"], given["action"],
                actions.Actor("console", "console"), given.get("text") or None, given.get("stay") or None,
                given.get("request_id") or None,
            )  # fmt: skip
        except work.ActionRefused as refused:
            log.info("admin_action_refused", reason=str(refused))
            return JSONResponse({"error": str(refused)}, status_code=409)
        log.info("admin_action", action_id=record.id, source=record.source, subject=record.subject,
                 action=record.action, new=new)  # fmt: skip
        final = await _settled(self.connection, record.id) if new else record
        status = 200 if final.status in actions.FINAL else 202
        return JSONResponse({**final.as_dict(), "new": new}, status_code=status)

    def health(self, request: Request) -> Response:
        found = health.read(self.connection, self.config.sources, self.config.sinks)
        sinks = [
            {"name": name, "type": self.config.sinks[name].type, **counts, **_state(found.sinks.get(name))}
            for name, counts in found.deliveries(self.config.sinks).items()
        ]
        reaches = router.reachable(self.config)
        sources = []
        for name, source in self.config.sources.items():
            poll = found.polls.get(name, health.Poll())
            sources.append({"name": name, "platform": source.platform, "last_ok_at": poll.last_ok_at,
                            "last_error": poll.last_error, "reaches": reaches.get(name, {})})  # fmt: skip
        return JSONResponse(
            {"queue_depth": found.queue_depth, "dead_letters": found.dead_letters, "workers": found.workers,
             "sinks": sinks, "sources": sources}
        )  # fmt: skip


async def _settled(connection: redis.Redis, action_id: str) -> actions.ActionRecord:
    """The action once a worker has carried it out, or as it stands after ACTION_WAIT seconds."""
    deadline = time.monotonic() + ACTION_WAIT
    while True:
        record = await run_in_threadpool(actions.load, connection, action_id)
        assert record is not None
        if record.status in actions.FINAL or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.1)


def _state(found: outbox.SinkState | None) -> dict[str, Any]:
    if found is None:
        return {}
    return {"state": found.shown, "held": found.held, "in_flight": found.in_flight}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _valid_cursor(cursor: str) -> bool:
    """``<score>:<offset>`` as eventlog.find returns it: a finite score (never NaN), ASCII digits."""
    bound, _, offset = cursor.partition(":")
    try:
        score = float(bound)
    except ValueError:
        return False
    return math.isfinite(score) and ascii_integer(offset) is not None


def console(request: Request) -> Response:
    page = resources.files("workhooks").joinpath("console.html").read_text()
    return HTMLResponse(page, headers={"content-security-policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                       "script-src 'unsafe-inline'; img-src 'self' data:", "x-frame-options": "DENY",
                                       "referrer-policy": "no-referrer"})  # fmt: skip


# The admin API's part of /openapi.json (workhooks/app.py adds it when the admin is on).
_OUTCOME = {"type": "object", "required": ["outcome"], "properties": {"outcome": {"type": "string"}}}


def _admin(
    method: str, summary: str, answers: dict[str, str], params: tuple[str, ...] = (), outcome: bool = False
) -> dict[str, Any]:
    """One admin operation: JSON answers (an object; refusals as ERROR, or every answer an outcome)."""
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in params]
    refusal = {"anyOf": [_OUTCOME, ERROR]} if outcome else ERROR  # a path no route takes: ERROR
    responses = {
        code: json_answer(({"type": "object"} if not outcome else _OUTCOME) if code < "400" else refusal, text)
        for code, text in answers.items()
    }
    responses["401"] = json_answer(ERROR, "No or a wrong admin token.")
    return {method: {"summary": summary, "security": [{"admin": []}], "parameters": parameters, "responses": responses}}


_EVENT_FILTERS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "schema": kind if isinstance(kind, dict) else {"type": kind},
        "description": text,
    }
    for name, kind, text in (
        ("source", "string", "a source name"),
        ("type", "string", "an event type, or a glob such as wordy.*"),
        ("subject", "string", "job/123, task/501234, ..."),
        ("phase", {"enum": list(get_args(Phase))}, "the event's phase"),
        ("status", {"enum": list(eventlog.STATUSES)}, "what became of it"),
        ("since", "number", "Unix time"),
        ("limit", "integer", "at most 200"),
        ("cursor", {"type": "string", "pattern": r"^[-+0-9.eE]+:[0-9]{1,20}$"}, "next_cursor of the previous page"),
    )
]
ADMIN_PATHS: dict[str, Any] = {
    "/admin/api/events": {
        "get": {
            **_admin(
                "get",
                "Events, newest first, with filters and cursor pagination",
                {"200": "A page.", "400": "A filter that is not one of its documented values, or a bad cursor."},
            )["get"],
            "parameters": _EVENT_FILTERS,
        }
    },
    "/admin/api/events/{event_id}": _admin(
        "get",
        "An event: its raw (redacted) callback, state and every delivery attempt",
        {"200": "The event.", "404": "Unknown or expired."},
        ("event_id",),
    ),
    "/admin/api/state/{source}/{subject}": _admin(
        "get", "A job/task/order's state and history", {"200": "The state.", "404": "None."}, ("source", "subject")
    ),
    "/admin/api/dead-letters": _admin("get", "Deliveries out of attempts or refused", {"200": "Dead letters."}),
    "/admin/api/deliveries/{delivery_id}/replay": _admin(
        "post",
        "Send a dead delivery again",
        {"202": "Queued.", "404": "Unknown.", "409": "Not dead."},
        ("delivery_id",),
        outcome=True,
    ),
    "/admin/api/quarantine": _admin("get", "Authenticated callbacks that could not be parsed", {"200": "Items."}),
    "/admin/api/mismatches": _admin(
        "get", "Status callbacks the platform's API contradicted (confirm: true), not applied", {"200": "Items."}
    ),
    "/admin/api/quarantine/{item_id}/replay": _admin(
        "post",
        "Parse a quarantined body again and queue it",
        {"202": "Queued.", "404": "Unknown.", "409": "Still unparseable."},
        ("item_id",),
        outcome=True,
    ),
    "/admin/api/health": _admin(
        "get", "Queue, workers, each sink's outcomes and state, each source's last poll", {"200": "Health."}
    ),
    "/admin/api/sinks": _admin(
        "get", "Each sink: where it delivers, breaker or pause, in flight, held, rate limit", {"200": "Sinks."}
    ),
    "/admin/api/sinks/{name}/pause": _admin(
        "post",
        'Pause a sink: its deliveries wait, no attempts, no retries spent (body: {"reason": "..."}, optional)',
        {"200": "Paused.", "400": 'A body that is not {"reason": string}.', "404": "No such sink."},
        ("name",),
        outcome=True,
    ),
    "/admin/api/sinks/{name}/resume": _admin(
        "post",
        "Resume a paused sink: its held deliveries go out in order, at its rate",
        {"200": "Resumed, or was not paused.", "404": "No such sink."},
        ("name",),
        outcome=True,
    ),
}
ADMIN_PATHS |= {
    "/admin/api/work": _admin(
        "get", "Every job, task and order: status, phase, time in it, last event (?phase=awaiting_client&source=)",
        {"200": "Subjects, most recently active first.", "400": "A phase that is not one, or a bad limit."},
    ),
    "/admin/api/work/{source}/{subject}": _admin(
        "get", "A subject's timeline (events and actions, as sentences) and the actions that apply now",
        {"200": "The subject.", "404": "Unknown or expired."}, ("source", "subject"),
    ),
    "/admin/api/actions": {
        **_admin("get", "The newest actions people took, and their answers", {"200": "Actions."}),
        **_admin(
            "post", 'Act on a subject: {"source", "subject", "action", "text"?, "stay"?, "request_id"?}',
            {"200": "Carried out (or the same action asked for before).", "202": "Queued, not answered yet.",
             "400": "A body that is not the documented object.", "409": "The action does not apply now."},
        ),
    },
}  # fmt: skip
SECURITY = {"admin": {"type": "http", "scheme": "bearer"}}


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
            Route("/api/mismatches", admin.list_mismatches, methods=["GET"]),
            Route("/api/quarantine/{item_id}/replay", admin.replay_quarantined, methods=["POST"]),
            Route("/api/health", admin.health, methods=["GET"]),
            Route("/api/work", admin.list_work, methods=["GET"]),
            Route("/api/work/{source}/{subject:path}", admin.show_work, methods=["GET"]),
            Route("/api/actions", admin.actions, methods=["GET", "POST"]),
            Route("/api/sinks", admin.list_sinks, methods=["GET"]),
            Route("/api/sinks/{name}/pause", admin.pause_sink, methods=["POST"]),
            Route("/api/sinks/{name}/resume", admin.resume_sink, methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.add_middleware(BearerToken, token=config.admin.token.get_secret_value())
    return app
