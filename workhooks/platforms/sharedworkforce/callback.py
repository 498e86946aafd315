"""Shared Workforce task-response callbacks, in JSON or XML.

What real senders do, beyond the documents: the official Ruby client sent plain
``application/json``, put the key only in the body, and its fixtures carry ``name`` for
``title``, responses with ``username`` and no ``id``, ``answer`` as a list for tags and a
bare (unwrapped) task. The documents' own sample body is not valid JSON
(``"responses": ["answer": ...]``); no serializer produces it, so it is refused as
unparseable (400, quarantined) rather than guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from workhooks.core.events import Callback
from workhooks.core.exceptions import ParseError, UnsupportedMediaTypeError
from workhooks.core.media import MAX_JSON_DEPTH, load_json, media_type

RESPONSES_RECEIVED = "sharedworkforce.task.responses_received"
EVENT_TYPES = (RESPONSES_RECEIVED,)

VENDOR_JSON = "application/vnd.com.sharedworkforce.text+json"
VENDOR_XML = "application/vnd.com.sharedworkforce.text+xml"
JSON_TYPES = {VENDOR_JSON, "application/json", "text/json"}
XML_TYPES = {VENDOR_XML, "application/xml", "text/xml"}
MAX_LINK = 2048
RESPONSE_FIELDS = ("id", "username", "answer", "new_image_url")
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
_BODY = {"type": "object", "properties": {"api_key": {"type": "string"}, "task": _TASK}, "required": ["task"]}
BODY_SCHEMAS: dict[str, dict[str, Any]] = {  # for the OpenAPI document
    **{kind: _BODY for kind in sorted(JSON_TYPES)},
    **{kind: {"type": "string"} for kind in sorted(XML_TYPES)},
}


def _key(tag: str) -> str:
    return tag.replace("-", "_")  # Rails' to_xml dasherizes keys


def _from_xml(element: Element, depth: int = 1) -> Any:
    """Rails-style XML (type="array|integer|boolean", nil="true") to plain values."""
    if depth > MAX_JSON_DEPTH:
        raise ParseError(f"XML nested deeper than {MAX_JSON_DEPTH} levels")
    kind = element.get("type")
    if element.get("nil") == "true":
        return None
    children = list(element)
    if kind == "array":
        return [_from_xml(child, depth + 1) for child in children]
    if children:
        mapping: dict[str, Any] = {}
        for child in children:
            key, value = _key(child.tag), _from_xml(child, depth + 1)
            if key in mapping:  # repeated tag without type="array"
                existing = mapping[key]
                mapping[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
            else:
                mapping[key] = value
        return mapping
    text = element.text or ""
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise ParseError(f"<{element.tag}> is typed integer but holds {text[:20]!r}") from None
    if kind == "boolean":
        return text.strip() == "true"
    return text


def _load_xml(body: bytes) -> dict[str, Any]:
    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ParseError(
            f"XML refused: {type(exc).__name__} (DTDs, entities and external references are not accepted)"
        ) from None
    except (XMLParseError, ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"body is not well-formed XML: {exc}") from None
    value = _from_xml(root)
    if _key(root.tag) == "task":
        return {"task": value if isinstance(value, dict) else {}}
    if not isinstance(value, dict):
        raise ParseError(f"XML root <{root.tag}> holds no task")
    return value


def decode(body: bytes, content_type: str | None) -> dict[str, Any]:
    """Body bytes to a document; which content types are accepted is decided here."""
    kind = media_type(content_type)
    if kind == "":
        kind = "application/xml" if body.lstrip()[:1] == b"<" else "application/json"
    if kind in JSON_TYPES or kind.endswith("+json"):
        document = load_json(body)
        if not isinstance(document, dict):
            raise ParseError("JSON body must be an object")
        return document
    if kind in XML_TYPES or kind.endswith("+xml"):
        return _load_xml(body)
    raise UnsupportedMediaTypeError(
        f"Shared Workforce callbacks are JSON or XML ({', '.join(sorted(JSON_TYPES | XML_TYPES))}), not {kind!r}"
    )


def _task(document: dict[str, Any]) -> dict[str, Any]:
    task = document.get("task")
    if isinstance(task, dict):
        return task
    if task is None and ("responses" in document or "id" in document):
        return document  # bare task, as the Ruby client allowed "for backwards compatibility"
    raise ParseError('no task in the body (expected {"task": {...}} or a bare task)')


def api_key(document: dict[str, Any]) -> str | None:
    """The key the sender put in the body, if any (top level, or inside the task)."""
    for holder in (document, document.get("task")):
        if isinstance(holder, dict) and "api_key" in holder:
            value = holder["api_key"]
            return value if isinstance(value, str) else json.dumps(value)
    return None


def _responses(task: dict[str, Any]) -> list[dict[str, Any]]:
    responses = task.get("responses")
    if isinstance(responses, dict) and len(responses) == 1:  # <responses><response>..</response></responses>
        (responses,) = responses.values()
        if isinstance(responses, dict):
            responses = [responses]
    if not isinstance(responses, list) or not responses:
        raise ParseError("task.responses must be a non-empty list")
    normalized = []
    for index, response in enumerate(responses):
        if not isinstance(response, dict):
            raise ParseError(f"task.responses.{index} must be an object")
        kept = {key: value for key, value in response.items() if key != "api_key"}
        answer = kept.get("answer")
        if isinstance(answer, dict) and len(answer) == 1:  # <answer><answer>a</answer><answer>b</answer></answer>
            (inner,) = answer.values()
            kept["answer"] = inner if isinstance(inner, list) else [inner]
        normalized.append(kept)
    return normalized


def to_callback(document: dict[str, Any]) -> Callback:
    task = _task(document)
    task_id = task.get("id")
    if isinstance(task_id, bool) or not isinstance(task_id, (int, str)) or str(task_id).strip() == "":
        raise ParseError("task.id is missing")
    title = task.get("title", task.get("name"))
    responses = _responses(task)
    identity = sorted(
        json.dumps(
            {field: response.get(field) for field in RESPONSE_FIELDS if field != "new_image_url"},
            sort_keys=True,
            default=str,
        )
        for response in responses
    )
    return Callback(
        type=RESPONSES_RECEIVED,
        subject=f"task/{task_id}",
        data={
            "task_id": task_id,
            "title": title if isinstance(title, str) else None,
            "responses": responses,
            "callback_params": task.get("callback_params", document.get("callback_params")),
        },
        identity=(str(task_id).strip(), *identity),
        phase="completed",
    )


def from_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    """The task's page on Shared Workforce, from ``Link: <https://...>; rel="response"`` (the document's
    callbacks carry it); nothing when absent, malformed or not an http(s) URL."""
    value = headers.get("link", "")[:MAX_LINK]
    for part in value.split(","):
        target, _, params = part.strip().partition(";")
        if target.startswith("<") and target.endswith(">") and 'rel="response"' in params.replace(" ", ""):
            url = target[1:-1]
            if url.startswith(("https://", "http://")) and not any(c in url for c in '<>" \t\r\n'):
                return {"link": url}
    return {}


def parse(body: bytes, content_type: str | None) -> Callback:
    return to_callback(decode(body, content_type))
