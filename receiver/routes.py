"""Thin handlers: find the source, verify, parse, hand the event to ingest, answer."""

from __future__ import annotations

from typing import Any

import anyio
import redis.asyncio
import structlog
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from receiver import auth, metrics, quarantine
from receiver.config import SharedWorkforceSource, Source, WordySource
from receiver.events import Event
from receiver.exceptions import CallbackError, ParseError
from receiver.ingest import prepare
from receiver.intake import Intake, UnavailableError
from receiver.openapi import spec_for
from receiver.redact import redact
from receiver.sources import sharedworkforce, wordy

RETRY_AFTER_SECONDS = "5"


def _reject(status: int, reason: str, **context: Any) -> JSONResponse:
    """Every refusal: a JSON reason for the sender, and the same reason on the request's log line."""
    structlog.contextvars.bind_contextvars(outcome="rejected", reason=reason, **context)
    return JSONResponse({"error": reason, **context}, status_code=status)


def _unavailable(error: Exception) -> JSONResponse:
    reason = f"redis: {type(error).__name__}" if isinstance(error, RedisError) else str(error)
    structlog.contextvars.bind_contextvars(outcome="unavailable", reason=reason)
    return JSONResponse(
        {"error": "storage unavailable, retry later"}, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS}
    )


def _source(request: Request, kind: type) -> tuple[str, Any] | JSONResponse:
    name = request.path_params["source"]
    source = request.app.state.config.sources.get(name)
    structlog.contextvars.bind_contextvars(source=name)
    if not isinstance(source, kind):
        return _reject(404, "unknown source")
    return name, source


async def _accept(request: Request, source: Source, event: Event, content_type: str, body: bytes) -> Response:
    intake: Intake = request.app.state.intake
    try:
        outcome = await intake.accept(prepare(event, content_type, body, source.secrets()))
    except UnavailableError as error:
        return _unavailable(error)
    structlog.contextvars.bind_contextvars(event_id=event.id, type=event.type, outcome=outcome)
    if outcome == "duplicate":
        return JSONResponse({"id": event.id, "duplicate": True}, status_code=200)
    return JSONResponse({"id": event.id}, status_code=202)


async def _quarantine(
    request: Request, name: str, source: Source, error: ParseError, content_type: str, body: bytes
) -> Response:
    client: redis.asyncio.Redis = request.app.state.redis
    try:
        item_id = await quarantine.put(client, name, str(error), content_type, redact(body, source.secrets()))
    except RedisError as redis_error:
        return _unavailable(redis_error)
    return _reject(400, str(error), quarantine_id=item_id)


async def wordy_callback(request: Request) -> Response:
    found = _source(request, WordySource)
    if isinstance(found, Response):
        return found
    name, source = found
    if not auth.matches(request.path_params["token"], source.secrets()):
        return _reject(401, "bad token")
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    try:
        callback = wordy.parse(body, content_type)
    except ParseError as error:
        return await _quarantine(request, name, source, error, content_type, body)
    except CallbackError as error:
        return _reject(error.status_code, str(error))
    return await _accept(request, source, Event.from_callback(name, callback), content_type, body)


async def sharedworkforce_callback(request: Request) -> Response:
    found = _source(request, SharedWorkforceSource)
    if isinstance(found, Response):
        return found
    name, source = found
    header_key = request.headers.get("x-api-key")
    if header_key is not None and not auth.matches(header_key.encode("latin-1"), source.secrets()):
        return _reject(401, "bad X-API-Key")
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    try:
        document = sharedworkforce.decode(body, content_type)
    except ParseError as error:
        if header_key is None:  # nothing vouches for this body: do not keep it
            return _reject(401, f"no X-API-Key and the body cannot be read ({error})")
        return await _quarantine(request, name, source, error, content_type, body)
    except CallbackError as error:
        return _reject(error.status_code, str(error))
    body_key = sharedworkforce.api_key(document)
    if body_key is None and header_key is None:
        return _reject(401, "no API key (X-API-Key header or api_key in the body)")
    if body_key is not None and not auth.matches(body_key, source.secrets()):
        return _reject(401, "bad api_key in the body")
    try:
        callback = sharedworkforce.to_callback(document)
    except ParseError as error:
        return await _quarantine(request, name, source, error, content_type, body)
    return await _accept(request, source, Event.from_callback(name, callback), content_type, body)


async def openapi(request: Request) -> Response:
    return JSONResponse(spec_for(request.app.state.config))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus gauges of the deployment, read from Redis now (receiver/metrics.py)."""
    depth = await anyio.to_thread.run_sync(request.app.state.intake.spool.depth)
    snapshot = await metrics.read(request.app.state.redis, depth, request.app.state.config.sources)
    return Response(metrics.render(snapshot), media_type=metrics.CONTENT_TYPE)


async def readyz(request: Request) -> Response:
    """Ready while callbacks can be taken durably: Redis answers, or the spool can be written."""
    intake: Intake = request.app.state.intake
    depth = await anyio.to_thread.run_sync(intake.spool.depth)
    try:
        await request.app.state.redis.ping()
    except RedisError as error:
        writable = await anyio.to_thread.run_sync(intake.spool.writable)
        body = {
            "status": "degraded" if writable else "unavailable",
            "redis": type(error).__name__,
            "spool_depth": depth,
        }
        return JSONResponse(body, status_code=200 if writable else 503)
    return JSONResponse({"status": "ok", "redis": "ok", "spool_depth": depth})
