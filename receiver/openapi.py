"""The receiver's OpenAPI 3.1 description, served at /openapi.json (and checked by schemathesis in CI).

The callback routes are described from the platform registry: one route per way of
authenticating, with the body schemas of the platforms that use it.
"""

from __future__ import annotations

import copy
from typing import Any

from receiver.ratelimit import EXEMPT as LIMITER_EXEMPT
from workhooks.config.schema import Config
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import AuthStyle

# Every refusal, ours or Starlette's (routes.http_error): a JSON object with the reason, nothing else.
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": False,
}


def json_answer(schema: dict[str, Any], description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = {
            name: {"schema": {"type": "string"}, "description": text} for name, text in headers.items()
        }
    return response


_ANSWERS: dict[str, Any] = {
    "200": json_answer(
        {
            "type": "object",
            "required": ["id", "duplicate"],
            "properties": {"id": {"type": "string"}, "duplicate": {"const": True}},
            "additionalProperties": False,
        },
        "The same callback was accepted before; nothing new is queued.",
    ),
    "202": json_answer(
        {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": "^(evt|rcpt)_[0-9a-f]{32}$",
                    "description": "The event's id; rcpt_: a receipt, while Redis (which gives the id) is away",
                }
            },
            "additionalProperties": False,
        },
        "Accepted: stored in Redis (or fsync'd to the spool while Redis is away) before this answer.",
    ),
    "400": json_answer(
        {**ERROR, "properties": {**ERROR["properties"], "quarantine_id": {"type": "string"}}},
        "Authenticated but not understood; the redacted body is quarantined for replay.",
    ),
    "401": json_answer(ERROR, "Bad or missing token / API key."),
    "404": json_answer(ERROR, "No such source, or the wrong URL shape for its platform."),
    "413": {
        "description": "Body over the limit (receiver.max_body_bytes): Starlette's plain text when Content-Length "
        "says so up front, our JSON when a chunked body runs over.",
        "content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {"schema": ERROR}},
    },
    "415": json_answer(ERROR, "A content type this platform does not send."),
    "429": json_answer(ERROR, "Too many failed requests from this address.", **{"Retry-After": "seconds"}),
    "503": json_answer(ERROR, "Neither Redis nor the spool can take the callback.", **{"Retry-After": "seconds"}),
}

HOOK_PATHS: dict[str, AuthStyle] = {"/hooks/{source}/{token}": "path_token", "/hooks/{source}": "api_key"}
_CREDENTIAL: dict[AuthStyle, dict[str, Any]] = {
    "path_token": {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": "The source's secret capability token."},
    "api_key": {"name": "X-API-Key", "in": "header", "required": False, "schema": {"type": "string"}},
}  # fmt: skip


def _style(platform: str) -> AuthStyle | None:
    reader = PLATFORMS[platform].callback
    return reader.auth if reader is not None else None


def _hook(style: AuthStyle) -> dict[str, Any]:
    readers = [
        platform.callback for platform in PLATFORMS.values() if platform.callback and platform.callback.auth == style
    ]
    content = {kind: {"schema": schema} for reader in readers for kind, schema in reader.body_schemas.items()}
    return {
        "post": {
            "summary": " or ".join(reader.summary for reader in readers),
            "parameters": [
                {"name": "source", "in": "path", "required": True, "schema": {"type": "string"}},
                _CREDENTIAL[style],
            ],
            "requestBody": {"required": True, "content": content},
            "responses": _ANSWERS,
        }
    }


def spec_for(config: Config) -> dict[str, Any]:
    """The document, with this deployment's source names for each callback route."""
    document = copy.deepcopy(SPEC)
    for path, style in HOOK_PATHS.items():
        names = [name for name, source in config.sources.items() if _style(source.platform) == style]
        if names:
            document["paths"][path]["post"]["parameters"][0]["schema"] = {"type": "string", "enum": names}
    return document


def throttled(document: dict[str, Any]) -> dict[str, Any]:
    """Every operation the failure limiter guards (all but its exempt paths) may answer 429."""
    answer = json_answer(ERROR, "Too many failed requests from this address.", **{"Retry-After": "seconds"})
    for path, operations in document["paths"].items():
        if path not in LIMITER_EXEMPT:
            for operation in operations.values():
                operation["responses"].setdefault("429", answer)
    return document


def with_paths(document: dict[str, Any], paths: dict[str, Any], security: dict[str, Any]) -> dict[str, Any]:
    """The document with the routes an app mounted beside the receiver (the admin API) added."""
    document["paths"].update(paths)
    document.setdefault("components", {}).setdefault("securitySchemes", {}).update(security)
    return document


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "workhooks receiver",
        "version": "0.1.0",
        "description": "Callbacks from Wordy and Shared Workforce, verified, stored and queued.",
    },
    "paths": {
        **{path: _hook(style) for path, style in HOOK_PATHS.items()},
        "/slack/actions": {
            "post": {
                "summary": "A Slack app's interactivity Request URL: button clicks and modal submissions, signed by "
                "Slack (X-Slack-Signature over the raw body, X-Slack-Request-Timestamp within 5 minutes)",
                "parameters": [
                    {"name": "X-Slack-Signature", "in": "header", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "X-Slack-Request-Timestamp",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "properties": {"payload": {"type": "string"}}}
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Acknowledged (queued, refused with an ephemeral message, or a modal "
                        "opened); for a modal's submission, possibly its errors.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "400": json_answer(ERROR, "Signed, but not one of workhooks' buttons or modals."),
                    "401": json_answer(ERROR, "Not signed by a configured slack_app sink's secret, or too old."),
                    "404": json_answer(ERROR, "No slack_app sink is configured."),
                    "413": _ANSWERS["413"],
                    "429": _ANSWERS["429"],
                    "503": json_answer(ERROR, "Redis is unreachable: the action cannot be stored."),
                },
            }
        },
        "/act/{token}": {
            method: {
                "summary": summary,
                "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
                **(
                    {
                        "requestBody": {
                            "required": False,
                            "content": {
                                "application/x-www-form-urlencoded": {
                                    "schema": {"type": "object", "properties": {"text": {"type": "string"}}}
                                }
                            },
                        }
                    }
                    if method == "post"
                    else {}
                ),
                "responses": {
                    **{
                        code: {"description": text, "content": {"text/html": {"schema": {"type": "string"}}}}
                        for code, text in answers.items()
                    },
                    "429": _ANSWERS["429"],
                    **({"413": _ANSWERS["413"]} if method == "post" else {}),
                },
            }
            for method, summary, answers in (
                (
                    "get",
                    "An emailed action link's page: what it would do (nothing happens on GET)",
                    {
                        "200": "The page, with its form.",
                        "404": "Not an action link.",
                        "410": "Expired, altered, or its source or action is gone.",
                    },
                ),
                (
                    "post",
                    "An emailed action link's form: the action is asked for, once per link",
                    {
                        "200": "Done, failed, or asked before.",
                        "202": "Queued; not answered yet.",
                        "400": "A form that cannot be read, or the text it needs is missing.",
                        "404": "Not an action link.",
                        "410": "Used already, expired, altered, or gone.",
                        "503": "Redis is unreachable.",
                    },
                ),
            )
        },
        "/healthz": {
            "get": {"summary": "The process is up", "responses": {"200": json_answer({"type": "object"}, "Up.")}}
        },
        "/readyz": {
            "get": {
                "summary": "Callbacks can be taken durably (Redis, or the spool while Redis is away)",
                "responses": {
                    "200": json_answer(
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
                    "503": json_answer({"type": "object"}, "Neither Redis nor the spool is usable."),
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
            "get": {"summary": "This document", "responses": {"200": json_answer({"type": "object"}, "OpenAPI 3.1.")}}
        },
    },
}
