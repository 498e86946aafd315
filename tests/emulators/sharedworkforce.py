"""Shared Workforce REST API emulator, from sharedworkforce-rest-api.txt alone.

Routes (document): /tasks GET POST, /tasks/available GET, /tasks/completed GET, /tasks/{id} GET PUT DELETE,
/tasks/{id}/responses GET, and /tasks/{id}/authorized_responses POST (described in the text, missing from
the route list). Auth: X-API-Key header, or `api_key` in the request params (query, form, JSON or XML body).
406 unless Accept names a Shared Workforce MIME type; 401 bad key; 402 out of credits; 400 bad request.

Callbacks (on `complete_task`): POST to callback_url with Content-Type the vendor type, X-API-Key, and
`Link: <{link_base}/tasks/{id}>; rel="response"`; body {"api_key": ..., "task": {"title", "id", "responses"}}.
The document's sample body is not valid JSON (`"responses": ["answer": ..., "id": ...]`); we send
responses as a list of objects, and keep the sample verbatim in SAMPLE_CALLBACK_BODY for tests.

Assumptions where the document is silent:
- `strict_media_types=True` (default) is the document's rule: Accept must contain
  application/vnd.com.sharedworkforce.text+json or +xml, and a request body must carry one of those as its
  Content-Type (else 400). The document's own curl examples send `Accept: application/json`, which that
  rule refuses; `strict_media_types=False` also takes plain application/json (as the official Ruby client sent).
- The 406 check comes before the key check (no agreed format to answer in yet).
- Successful POST/PUT/DELETE answer 202 (the only success code listed); GETs answer 200. DELETE has no body.
- One task answers {"task": {...}}; lists answer bare task objects [{...}, ...]; /responses a list of
  {"answer", "id"}; errors {"error": text}. Tasks carry a "status": available, completed (or deleted, hidden).
- Required fields: title, instruction, answer_type (one of the five); answer_options unless answer_type is
  "edit" (literal reading); responses_required defaults to 1. A task costs responses_required credits.
- The callback fires once per task: `complete_task(id, answers)` adds the answers and completes the task
  at once, whatever responses_required says; callback_params is echoed inside the task object. The quick
  start's sample has no api_key in the body, the web hooks section's has: key_in_body / key_in_header choose.
  link_base defaults to this emulator's own URL (the document shows
  https://sharedworkforce.com in one place and https://api.sharedworkforce.com in another).
- XML: one element per field; lists as repeated children named by the singular of the parent (drop a
  trailing "s", else "item"); the callback's root element is <callback> holding <api_key> and <task>.
- The document says https only; the emulator is plain http on 127.0.0.1.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any, Literal

from tests.emulators.base import Emulator, Outbox, Request, Response

VENDOR_JSON = "application/vnd.com.sharedworkforce.text+json"
VENDOR_XML = "application/vnd.com.sharedworkforce.text+xml"
ANSWER_TYPES = ("choice", "tags", "edit", "crop", "rotate")
FIELDS = (
    "title",
    "instruction",
    "guidelines",
    "image_url",
    "image_crop_ratio",
    "text",
    "answer_type",
    "answer_options",
    "responses_required",
    "callback_url",
    "callback_params",
)
DOC_KEY = "acdc30b2-14c5-46ee-ba35-11d50edc65ec"

# Verbatim from the "Web hooks" section (not valid JSON: key/value pairs inside an array).
SAMPLE_CALLBACK_BODY = """{ 
  "api_key": "acdc30b2-14c5-46ee-ba35-11d50edc65ec",
  "task": {
    "title": "Remove offensive language",
    "id": 501234,
    "responses": [
      "answer": "My name is Dougie.",
      "id": "34562"
    ]
  }
}"""  # noqa: W291 (the sample's first line ends with a space)
SAMPLE_CALLBACK_HEADERS = {
    "Content-Type": VENDOR_JSON,
    "X-API-Key": DOC_KEY,
    "Link": '<https://api.sharedworkforce.com/tasks/501234>; rel="response"',
}


def singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and len(name) > 1 else "item"


def to_xml(name: str, value: Any) -> ET.Element:
    element = ET.Element(name)
    if isinstance(value, dict):
        element.extend(to_xml(key, item) for key, item in value.items())
    elif isinstance(value, list):
        element.extend(to_xml(singular(name), item) for item in value)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def from_xml(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    if all(child.tag == singular(element.tag) for child in children):
        return [from_xml(child) for child in children]
    return {child.tag: from_xml(child) for child in children}


class SharedWorkforce(Emulator):
    def __init__(
        self,
        api_key: str = DOC_KEY,
        strict_media_types: bool = True,
        credits: int | None = None,
        callback_format: Literal["json", "xml"] = "json",
        key_in_header: bool = True,
        key_in_body: bool = True,
        link_base: str | None = None,
        auto_deliver: bool = False,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.strict = strict_media_types
        self.credits = credits
        self.callback_format = callback_format
        self.key_in_header = key_in_header
        self.key_in_body = key_in_body
        self.link_base = link_base
        self.outbox = Outbox(auto=auto_deliver)
        self.tasks: dict[int, dict[str, Any]] = {}
        self.responses: dict[int, list[dict[str, Any]]] = {}
        self.authorized: dict[int, list[Any]] = {}
        self.next_id = 501234
        self.next_response = 34562

    def stop(self) -> None:
        super().stop()
        self.outbox.join()  # callbacks already on their way finish before the test moves on

    # ---- helpers for tests (the workers' side) --------------------------------------------------------

    def add_task(self, title: str, callback_url: str | None = None, answer_type: str = "edit") -> int:
        """What POST /tasks makes of a valid task (the document's quick-start example)."""
        fields = {"title": title, "instruction": "Edit the text to remove any offensive language.",
                  "answer_type": answer_type, "answer_options": ["a", "b"], "callback_url": callback_url}  # fmt: skip
        with self.lock:
            status, _, body = self._create({"task": {k: v for k, v in fields.items() if v is not None}})
        assert status == 202, body
        return int(body["task"]["id"])

    def complete_task(self, task_id: int, answers: list[Any]) -> None:
        """Workers answer; the task is completed and its callback queued."""
        with self.lock:
            task = self.tasks[task_id]
            for answer in answers:
                self.responses[task_id].append({"answer": answer, "id": str(self.next_response)})
                self.next_response += 1
            task["status"] = "completed"
            if task.get("callback_url"):
                body, headers = self.callback(task)
                self.outbox.add(task["callback_url"], body, headers)

    def callback(self, task: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The callback body and headers for a completed task."""
        inner: dict[str, Any] = {
            "title": task["title"],
            "id": task["id"],
            "responses": self.responses.get(task["id"], []),
        }
        if task.get("callback_params") is not None:
            inner["callback_params"] = task["callback_params"]
        payload: dict[str, Any] = {"api_key": self.api_key} if self.key_in_body else {}
        payload["task"] = inner
        headers = {"Link": f'<{self.link_base or self.url}/tasks/{task["id"]}>; rel="response"'}
        if self.key_in_header:
            headers["X-API-Key"] = self.api_key
        if self.callback_format == "xml":
            headers["Content-Type"] = VENDOR_XML
            return ET.tostring(to_xml("callback", payload), encoding="utf-8", xml_declaration=True), headers
        headers["Content-Type"] = VENDOR_JSON
        return json.dumps(payload).encode(), headers

    def send_sample_callback(self, url: str, body: str = SAMPLE_CALLBACK_BODY) -> None:
        """Queue the document's sample callback, verbatim (invalid JSON), with the document's headers."""
        self.outbox.add(url, body.encode(), dict(SAMPLE_CALLBACK_HEADERS))

    # ---- internals ----------------------------------------------------------------------------------------

    def _format(self, request: Request) -> str | None:
        accept = request.headers.get("accept", "").lower()
        if VENDOR_XML in accept:
            return "xml"
        if VENDOR_JSON in accept or (not self.strict and "application/json" in accept):
            return "json"
        return None

    def _body(self, request: Request) -> dict[str, Any] | None:
        kind = request.content_type
        if kind == VENDOR_XML:
            try:
                root = ET.fromstring(request.body)  # noqa: S314 (test-only; requests come from our own client)
            except ET.ParseError:
                return None
            value = from_xml(root)
            return {root.tag: value}
        if kind == VENDOR_JSON or (not self.strict and kind == "application/json"):
            try:
                value = json.loads(request.body)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
        return None

    def handle(self, request: Request) -> Response:
        kind = self._format(request)
        if kind is None:
            return Response(406, {"error": f"Accept must include {VENDOR_JSON} or {VENDOR_XML}"})
        body: dict[str, Any] | None = {}
        if request.method in ("POST", "PUT"):
            body = self._body(request)
        key = request.headers.get("x-api-key") or request.param("api_key")
        if key is None and isinstance(body, dict):
            key = body.get("api_key") or next((v.get("api_key") for v in body.values() if isinstance(v, dict)), None)
        if key != self.api_key:
            return self._answer(kind, 401, "error", {"error": "Your API key was not supplied or is incorrect."})
        if body is None:
            return self._answer(kind, 400, "error", {"error": "unreadable body or wrong Content-Type"})
        parts = request.path.strip("/").split("/")
        with self.lock:
            status, root, value = self._route(request.method, parts, body)
        return self._answer(kind, status, root, value)

    def _answer(self, kind: str, status: int, root: str, payload: Any) -> Response:
        """payload is the JSON answer; XML wraps it in <root> (a {root: x} payload becomes <root>x</root>)."""
        if payload is None:
            return Response(status)
        if kind == "json":
            return Response(status, payload, content_type=VENDOR_JSON)
        inner = payload[root] if isinstance(payload, dict) and list(payload) == [root] else payload
        document = ET.tostring(to_xml(root, inner), encoding="utf-8", xml_declaration=True)
        return Response(status, raw=document, content_type=VENDOR_XML)

    def _route(self, method: str, parts: list[str], body: dict[str, Any]) -> tuple[int, str, Any]:
        live = {i: t for i, t in self.tasks.items() if t["status"] != "deleted"}
        if parts == ["tasks"] and method == "GET":
            return 200, "tasks", [dict(t) for t in live.values()]
        if parts == ["tasks"] and method == "POST":
            return self._create(body)
        if len(parts) == 2 and parts[1] in ("available", "completed") and method == "GET":
            wanted = "available" if parts[1] == "available" else "completed"
            return 200, "tasks", [dict(t) for t in live.values() if t["status"] == wanted]
        if len(parts) < 2 or parts[0] != "tasks" or not parts[1].isdigit() or int(parts[1]) not in live:
            return 404, "error", {"error": "not found"}
        task, rest = live[int(parts[1])], parts[2:]
        if not rest and method == "GET":
            return 200, "task", {"task": dict(task)}
        if not rest and method == "PUT":
            fields = body.get("task")
            if not isinstance(fields, dict) or fields.get("answer_type", task["answer_type"]) not in ANSWER_TYPES:
                return 400, "error", {"error": 'body must be {"task": {...}} with a valid answer_type'}
            task.update({k: v for k, v in fields.items() if k in FIELDS})
            return 202, "task", {"task": dict(task)}
        if not rest and method == "DELETE":
            task["status"] = "deleted"
            return 202, "task", None
        if rest == ["responses"] and method == "GET":
            return 200, "responses", list(self.responses[task["id"]])
        if rest == ["authorized_responses"] and method == "POST":
            given = body.get("authorized_response")
            if not isinstance(given, dict) or "answer" not in given:
                return 400, "error", {"error": "authorized_response.answer is required"}
            self.authorized.setdefault(task["id"], []).append(given["answer"])
            return 202, "authorized_response", {"authorized_response": given}
        return 404, "error", {"error": "not found"}

    def _create(self, body: dict[str, Any]) -> tuple[int, str, Any]:
        fields = body.get("task")
        if not isinstance(fields, dict):
            return 400, "error", {"error": 'body must be {"task": {...}}'}
        missing = [name for name in ("title", "instruction", "answer_type") if not fields.get(name)]
        if fields.get("answer_type") != "edit" and not fields.get("answer_options"):
            missing.append("answer_options")
        if missing:
            return 400, "error", {"error": f"missing: {', '.join(missing)}"}
        if not str(fields.get("callback_url") or "http://").startswith(("http://", "https://")):
            return 400, "error", {"error": "callback_url must be an http(s) URL"}
        if fields["answer_type"] not in ANSWER_TYPES:
            return 400, "error", {"error": f"answer_type must be one of {', '.join(ANSWER_TYPES)}"}
        try:
            required = int(fields.get("responses_required", 1))
        except (TypeError, ValueError):
            required = 0
        if required < 1:
            return 400, "error", {"error": "responses_required must be a positive integer"}
        if self.credits is not None:
            if self.credits < required:
                return 402, "error", {"error": "You do not have enough credits remaining."}
            self.credits -= required
        task = {k: v for k, v in fields.items() if k in FIELDS}
        task.update(id=self.next_id, responses_required=required, status="available")
        self.tasks[self.next_id] = task
        self.responses[self.next_id] = []
        self.next_id += 1
        return 202, "task", {"task": dict(task)}
