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
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import ParseError as XMLParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from workhooks.core.events import Callback
from workhooks.core.exceptions import CallbackError, ParseError, UnsupportedMediaTypeError
from workhooks.core.media import MAX_ID_DIGITS, MAX_JSON_DEPTH, ascii_integer, load_json, media_type

RESPONSES_RECEIVED = "sharedworkforce.task.responses_received"
EVENT_TYPES = (RESPONSES_RECEIVED,)

VENDOR_JSON = "application/vnd.com.sharedworkforce.text+json"
VENDOR_XML = "application/vnd.com.sharedworkforce.text+xml"
JSON_TYPES = {VENDOR_JSON, "application/json", "text/json"}
XML_TYPES = {VENDOR_XML, "application/xml", "text/xml"}
MAX_LINK = 2048
MAX_XML_DEPTH = MAX_JSON_DEPTH
MAX_XML_ELEMENTS = 10_000  # a task with a thousand responses of several fields each fits
MAX_TASK_ID = 64  # characters of a task id sent as text
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


class ConflictingKeysError(CallbackError):
    """The body carries two different API keys (top level and in the task): it is refused, not guessed at."""

    status_code = 401


def _key(tag: str) -> str:
    return tag.replace("-", "_")  # Rails' to_xml dasherizes keys


@dataclass(slots=True)
class _Open:
    """An element being read: what its closing tag needs to become a plain value."""

    tag: str
    kind: str | None  # Rails' type="array|integer|boolean"
    nil: bool
    text: list[str] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)  # type="array": the children's values, in order
    mapping: dict[str, Any] = field(default_factory=dict)
    has_children: bool = False

    def add(self, key: str, value: Any) -> None:
        self.has_children = True
        if self.kind == "array":
            self.items.append(value)
        elif key not in self.mapping:
            self.mapping[key] = value
        elif isinstance(existing := self.mapping[key], list):  # repeated tag without type="array"
            existing.append(value)
        else:
            self.mapping[key] = [existing, value]

    def value(self) -> Any:
        if self.nil:
            return None
        if self.kind == "array":
            return self.items
        if self.has_children:
            return self.mapping
        text = "".join(self.text)
        if self.kind == "integer":
            number = ascii_integer(text, sys.get_int_max_str_digits(), signed=True)
            if number is None:
                raise ParseError(f"<{self.tag}> is typed integer but holds {text[:20]!r}")
            return number
        if self.kind == "boolean":
            return text.strip() == "true"
        return text


class _Reader:
    """An XMLParser target turning Rails-style XML (type="array|integer|boolean", nil="true") into plain
    values as each element closes. Every element costs a fixed amount of work, and reading stops at the
    first element past MAX_XML_ELEMENTS or MAX_XML_DEPTH: the work never grows faster than the body."""

    def __init__(self) -> None:
        self.open: list[_Open] = []
        self.elements = 0
        self.root: Any = None
        self.root_tag = ""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > MAX_XML_ELEMENTS:
            raise ParseError(f"XML has more than {MAX_XML_ELEMENTS} elements")
        if len(self.open) >= MAX_XML_DEPTH:
            raise ParseError(f"XML nested deeper than {MAX_XML_DEPTH} levels")
        self.open.append(_Open(tag, attrib.get("type"), attrib.get("nil") == "true"))

    def data(self, text: str) -> None:
        if self.open:
            self.open[-1].text.append(text)

    def end(self, tag: str) -> None:
        value = self.open.pop().value()
        if self.open:
            self.open[-1].add(_key(tag), value)
        else:
            self.root, self.root_tag = value, tag

    def close(self) -> Any:
        return self.root


def _load_xml(body: bytes) -> dict[str, Any]:
    reader = _Reader()
    parser = DefusedXMLParser(target=reader, forbid_dtd=True)  # entities and external references refused too
    try:
        parser.feed(body)
        value = parser.close()
    except DefusedXmlException as exc:
        raise ParseError(
            f"XML refused: {type(exc).__name__} (DTDs, entities and external references are not accepted)"
        ) from None
    except (XMLParseError, ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"body is not well-formed XML: {exc}") from None
    if _key(reader.root_tag) == "task":
        return {"task": value if isinstance(value, dict) else {}}
    if not isinstance(value, dict):
        raise ParseError(f"XML root <{reader.root_tag}> holds no task")
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
    """The key the sender put in the body, if any: top level and/or inside the task. Both are read:
    when both are there they must be the same key, else ConflictingKeysError (401)."""
    found = []
    for holder in (document, document.get("task")):
        if isinstance(holder, dict) and "api_key" in holder:
            value = holder["api_key"]
            found.append(value if isinstance(value, str) else json.dumps(value))
    if len(set(found)) > 1:
        raise ConflictingKeysError("api_key and task.api_key in the body differ")
    return found[0] if found else None


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


def _task_id(task: dict[str, Any]) -> int | str:
    """A whole number of at most MAX_ID_DIGITS digits, or a short printable text."""
    task_id = task.get("id")
    if isinstance(task_id, int) and not isinstance(task_id, bool) and abs(task_id) < 10**MAX_ID_DIGITS:
        return task_id
    if isinstance(task_id, str) and task_id.strip() and len(task_id) <= MAX_TASK_ID and task_id.isprintable():
        return task_id
    if task_id is None or task_id == "":
        raise ParseError("task.id is missing")
    raise ParseError(f"task.id must be a whole number of at most {MAX_ID_DIGITS} digits or a text of at most "
                     f"{MAX_TASK_ID} characters")  # fmt: skip


def to_callback(document: dict[str, Any]) -> Callback:
    task = _task(document)
    task_id = _task_id(task)
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
