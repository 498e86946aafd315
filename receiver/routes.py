"""Thin handlers: find the source, verify, parse, hand the event to ingest, answer.

The two callback handlers read a ``Call`` and return an ``Answer`` (receiver/hooks.py serves them without
Starlette's request and response objects); the other routes are Starlette endpoints."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import redis.asyncio
import structlog
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from receiver import metrics
from receiver.deadline import BodyTimeoutError
from receiver.hooks import Answer, BodyTooLargeError, Call, Handler
from receiver.intake import Intake, UnavailableError
from receiver.openapi import spec_for, throttled, with_paths
from receiver.responses import JSONResponse
from workhooks.core import auth
from workhooks.core.events import Event
from workhooks.core.exceptions import CallbackError, ParseError
from workhooks.core.media import media_type
from workhooks.core.redact import redact, redact_body
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import AuthStyle, CallbackSource, SourceSettings
from workhooks.store import health, quarantine
from workhooks.store.ingest import prepare

RETRY_AFTER_SECONDS = "5"
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _reject(status: int, reason: str, **context: Any) -> Answer:
    """Every refusal: a JSON reason for the sender, and the same reason on the request's log line."""
    structlog.contextvars.bind_contextvars(outcome="rejected", reason=reason, **context)
    return Answer(status, {"error": reason, **context})


def refused(error: Exception) -> Answer:
    """What reading a request raised, answered: Starlette's own refusals (no such route, a method it does not
    take) and a body over the limit like ours, JSON with the reason; a client that went away before its body
    was read, a 499 (nginx's "client closed request": not our failure, so no 500 and no traceback); a body
    that did not arrive in time (receiver/deadline.py), a 408 that closes the connection, the rest never read.
    Each with its reason on the request's log line."""
    if isinstance(error, ClientDisconnect):
        structlog.contextvars.bind_contextvars(outcome="client_disconnected", reason="client disconnected mid-request")
        return Answer(499)
    if isinstance(error, BodyTimeoutError):
        return dataclasses.replace(_reject(408, str(error)), headers={"Connection": "close"})
    if isinstance(error, BodyTooLargeError) or (isinstance(error, HTTPException) and error.status_code == 413):
        return _reject(413, "body over the size limit")
    assert isinstance(error, HTTPException)
    return dataclasses.replace(_reject(error.status_code, error.detail), headers=error.headers or {})


async def http_error(request: Request, error: Exception) -> Response:
    """The app's exception handler for HTTPException, ClientDisconnect and BodyTimeoutError (``refused``)."""
    return refused(error).response()


def _unavailable(error: Exception) -> Answer:
    reason = f"redis: {type(error).__name__}" if isinstance(error, RedisError) else str(error)
    structlog.contextvars.bind_contextvars(outcome="unavailable", reason=reason)
    return Answer(503, {"error": "storage unavailable, retry later"}, {"Retry-After": RETRY_AFTER_SECONDS})


def _source(call: Call, style: AuthStyle) -> tuple[str, SourceSettings, CallbackSource] | Answer:
    """The named source, if it is one whose platform authenticates callbacks this route's way."""
    name = call.params["source"]
    source = call.state["config"].sources.get(name)
    structlog.contextvars.bind_contextvars(source=name)
    reader = PLATFORMS[source.platform].callback if source is not None else None
    if source is None or reader is None or reader.auth != style:
        return _reject(404, "unknown source")
    return name, source, reader


def _encoded(call: Call) -> Answer | None:
    """A compressed body is refused (415), not inflated: neither platform compresses its callbacks, and
    inflating would need its own size cap; a refusal the sender can read beats a body quarantined as garbage."""
    encodings = [
        part.strip().lower() for value in call.headers.getlist("content-encoding") for part in value.split(",")
    ]
    if any(encoding not in ("", "identity") for encoding in encodings):
        return _reject(415, "Content-Encoding is not supported: send the body uncompressed")
    return None


async def not_found(request: Request) -> Response:
    """Any other /hooks/ path, a trailing slash included: 404, never a redirect (a Location would repeat the
    token, built from the client's Host header) and never the path (it may hold a token)."""
    return _reject(404, "unknown source").response()


def _secrets(call: Call) -> tuple[str, ...]:
    """Every configured secret (each source's, each sink's, the admin token): a body may carry any of them."""
    secrets: tuple[str, ...] = call.state["secrets"]
    return secrets


def _told(call: Call, error: Exception) -> str:
    """An error's text for the sender, the log and the quarantine: a parser may quote what was sent."""
    return redact(str(error).encode(), _secrets(call)).decode(errors="replace")


def _parsed_json(content_type: str, document: dict[str, Any]) -> dict[str, Any] | None:
    """The decoded document when it was read as JSON (a JSON content type): redaction reuses it."""
    return document if media_type(content_type).endswith("json") else None


async def _accept(
    call: Call, event: Event, content_type: str, body: bytes, document: dict[str, Any] | None = None
) -> Answer:
    intake: Intake = call.state["intake"]
    try:
        outcome, event_id = await intake.accept(prepare(event, content_type, body, _secrets(call), document))
    except UnavailableError as error:
        return _unavailable(error)
    structlog.contextvars.bind_contextvars(event_id=event_id, type=event.type, outcome=outcome)
    if outcome == "duplicate":
        return Answer(200, {"id": event_id, "duplicate": True})
    return Answer(202, {"id": event_id})


async def _quarantine(call: Call, name: str, error: ParseError, content_type: str, body: bytes) -> Answer:
    client: redis.asyncio.Redis = call.state["redis"]
    reason = _told(call, error)
    try:
        item_id = await quarantine.put(client, name, reason, content_type, redact_body(body, content_type,
                                                                                    _secrets(call)))  # fmt: skip
    except RedisError as redis_error:
        return _unavailable(redis_error)
    return _reject(400, reason, quarantine_id=item_id)


async def token_callback(call: Call) -> Answer:
    """POST /hooks/<name>/<token>: the capability token in the URL is the credential (Wordy)."""
    found = _source(call, "path_token")
    if isinstance(found, Answer):
        return found
    name, source, reader = found
    if not auth.matches(call.params["token"], source.credentials()):
        return _reject(401, "bad token")
    if (refusal := _encoded(call)) is not None:
        return refusal
    content_type = call.headers.get("content-type", "")
    body = await call.body()
    try:
        document = reader.decode(body, content_type)  # reader.parse, in its two steps: the document is reused
        callback = reader.to_callback(document)
    except ParseError as error:
        return await _quarantine(call, name, error, content_type, body)
    except CallbackError as error:
        return _reject(error.status_code, _told(call, error))
    event = Event.from_callback(name, callback)
    return await _accept(call, event, content_type, body, _parsed_json(content_type, document))


async def key_callback(call: Call) -> Answer:
    """POST /hooks/<name>: an API key in X-API-Key and/or in the body (Shared Workforce)."""
    found = _source(call, "api_key")
    if isinstance(found, Answer):
        return found
    name, source, reader = found
    header_keys = call.headers.getlist("x-api-key")  # every one sent must be a key: no first-one-wins
    if not all(auth.matches(key.encode("latin-1"), source.credentials()) for key in header_keys):
        return _reject(401, "bad X-API-Key")
    if (refusal := _encoded(call)) is not None:
        return refusal
    content_type = call.headers.get("content-type", "")
    body = await call.body()
    try:
        document = reader.decode(body, content_type)
    except ParseError as error:
        if not header_keys:  # nothing vouches for this body: do not keep it
            return _reject(401, f"no X-API-Key and the body cannot be read ({_told(call, error)})")
        return await _quarantine(call, name, error, content_type, body)
    except CallbackError as error:
        return _reject(error.status_code, _told(call, error))
    try:
        body_key = reader.body_key(document)
    except CallbackError as error:  # e.g. two different keys in one body
        return _reject(error.status_code, _told(call, error))
    if body_key is None and not header_keys:
        return _reject(401, "no API key (X-API-Key header or api_key in the body)")
    if body_key is not None and not auth.matches(body_key, source.credentials()):
        return _reject(401, "bad api_key in the body")
    try:
        callback = reader.to_callback(document)
    except ParseError as error:
        return await _quarantine(call, name, error, content_type, body)
    extra = reader.from_headers(call.headers)
    if extra:
        callback = dataclasses.replace(callback, data={**callback.data, **extra})
    event = Event.from_callback(name, callback)
    return await _accept(call, event, content_type, body, _parsed_json(content_type, document))


# One handler per way of authenticating a callback (receiver/openapi.py's HOOK_PATHS gives each its path).
HANDLERS: dict[AuthStyle, Handler] = {
    "path_token": token_callback,
    "api_key": key_callback,
}


async def openapi(request: Request) -> Response:
    """This deployment's document, with the paths of anything mounted beside the receiver (the admin API)."""
    document = spec_for(request.app.state.config)
    for paths, security in getattr(request.app.state, "mounted_paths", []):
        with_paths(document, paths, security)
    return JSONResponse(throttled(document))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus gauges of the deployment, read from Redis now (receiver/metrics.py)."""
    depth = await anyio.to_thread.run_sync(request.app.state.intake.spool.depth)
    try:
        found: health.Health | None = await health.read_async(
            request.app.state.redis, request.app.state.config.sources, request.app.state.config.sinks
        )
    except RedisError:
        found = None
    return Response(metrics.render(found, depth), media_type=metrics.CONTENT_TYPE)


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
