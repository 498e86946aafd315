"""The receiver's OpenAPI 3.1 description, served at /openapi.json (and checked by schemathesis in CI)."""

from __future__ import annotations

import copy
from typing import Any

from receiver.config import Config, SharedWorkforceSource, WordySource
from receiver.sources.sharedworkforce import JSON_TYPES, XML_TYPES

_ERROR: dict[str, Any] = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _json(schema: dict[str, Any], description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = {
            name: {"schema": {"type": "string"}, "description": text} for name, text in headers.items()
        }
    return response


_ANSWERS: dict[str, Any] = {
    "200": _json(
        {
            "type": "object",
            "required": ["id", "duplicate"],
            "properties": {"id": {"type": "string"}, "duplicate": {"const": True}},
        },
        "The same callback was accepted before; nothing new is queued.",
    ),
    "202": _json(
        {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string", "pattern": "^evt_[0-9a-f]{32}$"}},
        },
        "Accepted: stored in Redis (or fsync'd to the spool while Redis is away) before this answer.",
    ),
    "400": _json(
        {**_ERROR, "properties": {**_ERROR["properties"], "quarantine_id": {"type": "string"}}},
        "Authenticated but not understood; the redacted body is quarantined for replay.",
    ),
    "401": _json(_ERROR, "Bad or missing token / API key."),
    "404": _json(_ERROR, "No such source, or the wrong URL shape for its platform."),
    "413": {"description": "Body over the limit.", "content": {"text/plain": {"schema": {"type": "string"}}}},
    "415": _json(_ERROR, "A content type this platform does not send."),
    "429": _json(_ERROR, "Too many failed requests from this address.", **{"Retry-After": "seconds"}),
    "503": _json(_ERROR, "Neither Redis nor the spool can take the callback.", **{"Retry-After": "seconds"}),
}

_WORDY_BODY = {
    "oneOf": [
        {
            "type": "object",
            "required": ["status", "job_id"],
            "properties": {
                "status": {
                    "type": "array",
                    "items": {"enum": ["awc", "acp", "aer", "acr", "c"]},
                    "minItems": 2,
                    "maxItems": 2,
                },
                "job_id": {"type": "integer", "minimum": 0},
            },
        },
        {
            "type": "object",
            "required": ["message", "job_id"],
            "properties": {
                "username": {"type": "string"},
                "message": {"type": "string"},
                "job_id": {"type": "integer", "minimum": 0},
            },
        },
    ]
}
_TASK = {
    "type": "object",
    "required": ["id", "responses"],
    "properties": {
        "id": {"type": ["integer", "string"]},
        "title": {"type": "string"},
        "responses": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "answer": {"type": ["string", "array"]},
                    "id": {"type": "string"},
                    "username": {"type": "string"},
                    "new_image_url": {"type": "string"},
                },
            },
        },
        "callback_params": {},
    },
}
_SWF_BODY = {
    "type": "object",
    "properties": {"api_key": {"type": "string"}, "task": _TASK},
    "required": ["task"],
}


def _source_parameter() -> dict[str, Any]:
    return {"name": "source", "in": "path", "required": True, "schema": {"type": "string"}}


def spec_for(config: Config) -> dict[str, Any]:
    """The document, with this deployment's source names for each callback route."""
    document = copy.deepcopy(SPEC)
    for path, kind in (("/hooks/{source}/{token}", WordySource), ("/hooks/{source}", SharedWorkforceSource)):
        names = [name for name, source in config.sources.items() if isinstance(source, kind)]
        if names:
            document["paths"][path]["post"]["parameters"][0]["schema"] = {"type": "string", "enum": names}
    if config.admin.token is not None:  # served by workhooks/admin.py
        document["paths"].update(ADMIN_PATHS)
        document.setdefault("components", {})["securitySchemes"] = {"admin": {"type": "http", "scheme": "bearer"}}
    return document


def _admin(method: str, summary: str, answers: dict[str, str], params: tuple[str, ...] = ()) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in params]
    responses = {code: _json({"type": "object"}, text) for code, text in answers.items()}
    responses["401"] = _json({"type": "object"}, "No or a wrong admin token.")
    return {method: {"summary": summary, "security": [{"admin": []}], "parameters": parameters, "responses": responses}}


_EVENT_FILTERS = [
    {"name": name, "in": "query", "required": False, "schema": {"type": kind}, "description": text}
    for name, kind, text in (
        ("source", "string", "a source name"),
        ("type", "string", "an event type, or a glob such as wordy.*"),
        ("subject", "string", "job/123, task/501234, ..."),
        ("phase", "string", "queued, in_progress, awaiting_client, completed, canceled"),
        ("status", "string", "queued, processed, delivered, retrying, dead"),
        ("since", "number", "Unix time"),
        ("limit", "integer", "at most 200"),
        ("cursor", "string", "next_cursor of the previous page"),
    )
]
ADMIN_PATHS: dict[str, Any] = {
    "/admin/api/events": {
        "get": {
            **_admin("get", "Events, newest first, with filters and cursor pagination", {"200": "A page."})["get"],
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
    ),
    "/admin/api/quarantine": _admin("get", "Authenticated callbacks that could not be parsed", {"200": "Items."}),
    "/admin/api/quarantine/{item_id}/replay": _admin(
        "post",
        "Parse a quarantined body again and queue it",
        {"202": "Queued.", "404": "Unknown.", "409": "Still unparseable."},
        ("item_id",),
    ),
    "/admin/api/health": _admin(
        "get", "Queue, workers, each sink's outcomes, each source's last poll", {"200": "Health."}
    ),
}


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "workhooks receiver",
        "version": "0.1.0",
        "description": "Callbacks from Wordy and Shared Workforce, verified, stored and queued.",
    },
    "paths": {
        "/hooks/{source}/{token}": {
            "post": {
                "summary": "A Wordy status or message callback",
                "parameters": [
                    _source_parameter(),
                    {
                        "name": "token",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The source's secret capability token.",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _WORDY_BODY},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                    },
                },
                "responses": _ANSWERS,
            }
        },
        "/hooks/{source}": {
            "post": {
                "summary": "A Shared Workforce task-response callback",
                "parameters": [
                    _source_parameter(),
                    {"name": "X-API-Key", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        **{kind: {"schema": _SWF_BODY} for kind in sorted(JSON_TYPES)},
                        **{kind: {"schema": {"type": "string"}} for kind in sorted(XML_TYPES)},
                    },
                },
                "responses": _ANSWERS,
            }
        },
        "/healthz": {"get": {"summary": "The process is up", "responses": {"200": _json({"type": "object"}, "Up.")}}},
        "/readyz": {
            "get": {
                "summary": "Callbacks can be taken durably (Redis, or the spool while Redis is away)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["status", "redis", "spool_depth"],
                            "properties": {
                                "status": {"enum": ["ok", "degraded"]},
                                "redis": {"type": "string"},
                                "spool_depth": {"type": "integer", "minimum": 0},
                            },
                        },
                        "Ready.",
                    ),
                    "503": _json({"type": "object"}, "Neither Redis nor the spool is usable."),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus gauges: queue depth and age, dead letters, quarantine, workers, spool",
                "responses": {"200": {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")}}
        },
    },
}
