"""Wordy API 1.0 emulator, from wordy-api-1.0.txt alone (plus FIELD-NOTES on real clients).

Serves under /api/1.0/ (`base_url`). HTTP Basic auth: the password must be the API key, the username
is ignored (the document's curl sends an empty one; real clients send an email) unless `username` is set.

Statuses (document): awc, acp, aer, acr, c. Callbacks go to the job's callback_url, shaped as the
document shows: {"status": [old, new], "job_id": n} and {"username": u, "message": m, "job_id": n}.

Assumptions where the document is silent:
- A new job starts in "acp" (both create samples show it); `set_status` reaches any status, e.g. awc.
- Error HTTP codes: 401 bad auth (with WWW-Authenticate), 404 unknown job/route (the document names
  404 only for a missing target), 400 for bad parameters or an action not allowed in the job's status,
  402 when the balance cannot pay. Bodies always {"error": ..., "verbose": ...}.
- reject moves acr -> aer (the document does not say; the editor presumably works on it again) and
  leaves its message on the conversation; confirm moves acr -> c; pay moves acp -> aer and takes the
  cost from the balance.
- "notifications when the job changes states or receives messages": every status change fires a status
  callback (customer actions included, as the pay sample shows) and every new message fires a message
  callback, the customer's own too (`callback_own_messages`). reject fires the message, then the status.
- Actions with "Response None" answer 200 with an empty body (`none_body`); the curl samples print
  "200 OK", which could also be read as a literal text body: set none_body=b"200 OK" for that reading.
- source_language_name: the create sample shows [id, name], the job sample shows "name". Default
  `language_name="as_samples"` copies that; "pair" or "string" uses one shape everywhere.
- A callback_url that is not http(s) is a 400.
- Price: $0.24 a word (the sample: 100 words, $24.00); words are counted by whitespace split.
- JSON callbacks carry Content-Type application/json (a real PHP client reads the raw body as JSON).
  Form-encoded callbacks encode lists as repeated keys: status=acp&status=aer&job_id=123.
- GET /job/{id}/source/ answers a JSON document as given, text content as a JSON string, and an
  uploaded file as its raw bytes with the upload's content type.
"""

from __future__ import annotations

import json
import time
from base64 import b64decode
from binascii import Error as Base64Error
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from tests.emulators.base import Emulator, Outbox, Request, Response

PREFIX = "/api/1.0"
STATUSES = ("awc", "acp", "aer", "acr", "c")
LANGUAGES = {
    "1": "English (US)",
    "2": "English (UK)",
    "3": "English (CAN)",
    "7": "Deutsch",
    "15": "Dansk",
    "16": "English (IN)",
    "18": "English (AUS)",
}
CENTS_PER_WORD = 24


def error(status: int, kind: str, verbose: str) -> Response:
    return Response(status, {"error": kind, "verbose": verbose})


def dollars(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


@dataclass
class Job:
    id: int
    language_id: int
    brief: str
    intrusive_editing: bool
    source: Any  # dict (json), str (content) or Upload
    word_count: int
    callback_url: str | None
    created: int
    status: str = "acp"
    target: Any = None
    conversation: list[dict[str, Any]] = field(default_factory=list)


class Wordy(Emulator):
    def __init__(
        self,
        api_key: str = "e8ddc55d93eb0e8281b255ea236dcc4f",
        username: str | None = None,
        balance_cents: int = 10_000,
        callback_format: Literal["json", "form"] = "json",
        customer_name: str = "John D",
        language_name: Literal["as_samples", "pair", "string"] = "as_samples",
        callback_own_messages: bool = True,
        none_body: bytes = b"",
        auto_deliver: bool = False,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.username = username
        self.balance_cents = balance_cents
        self.callback_format = callback_format
        self.customer_name = customer_name
        self.language_name = language_name
        self.callback_own_messages = callback_own_messages
        self.none_body = none_body
        self.outbox = Outbox(auto=auto_deliver)
        self.jobs: dict[int, Job] = {}
        self.next_id = 101

    @property
    def base_url(self) -> str:
        return f"{self.url}{PREFIX}/"

    def stop(self) -> None:
        super().stop()
        self.outbox.join()  # callbacks already on their way finish before the test moves on

    # ---- helpers for tests (the platform's side) ----------------------------------------------------

    def add_job(
        self,
        content: Any = "Some content",
        status: str = "acp",
        callback_url: str | None = None,
        language_id: int = 2,
        brief: str = "",
    ) -> int:
        with self.lock:
            job = Job(
                self.next_id,
                language_id,
                brief,
                False,
                content,
                count_words(content),
                callback_url,
                int(time.time()),
                status,
            )
            self.jobs[job.id] = job
            self.next_id += 1
            return job.id

    def set_status(self, job_id: int, status: str, fire: bool = True) -> None:
        assert status in STATUSES
        with self.lock:
            job = self.jobs[job_id]
            old, job.status = job.status, status
            if fire:
                self._callback(job, {"status": [old, status], "job_id": job.id})

    def add_message(self, job_id: int, message: str, user: str = "Editor X", fire: bool = True) -> None:
        """A message from the editor (or anyone) lands on the job's conversation."""
        with self.lock:
            self._message(self.jobs[job_id], user, message, fire)

    def deliver(self, job_id: int, target: Any, message: str | None = None) -> None:
        """The editor returns the job: target set, aer -> acr (the document's third callback)."""
        with self.lock:
            job = self.jobs[job_id]
            assert job.status == "aer", job.status
            job.target = target
            if message is not None:
                self._message(job, "Editor X", message, True)
            self.set_status(job_id, "acr")

    def callback_body(self, payload: dict[str, Any]) -> tuple[bytes, str]:
        if self.callback_format == "json":
            return json.dumps(payload).encode(), "application/json"
        return urlencode(payload, doseq=True).encode(), "application/x-www-form-urlencoded"

    # ---- internals ------------------------------------------------------------------------------------

    def _callback(self, job: Job, payload: dict[str, Any]) -> None:
        if job.callback_url:
            body, kind = self.callback_body(payload)
            self.outbox.add(job.callback_url, body, {"Content-Type": kind})

    def _message(self, job: Job, user: str, message: str, fire: bool) -> None:
        job.conversation.append({"user": user, "created": int(time.time()), "message": message})
        if fire:
            self._callback(job, {"username": user, "message": message, "job_id": job.id})

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (Base64Error, UnicodeDecodeError):
            return False
        return password == self.api_key and self.username in (None, user)

    def _job_view(self, job: Job, pair: bool) -> dict[str, Any]:
        name = LANGUAGES.get(str(job.language_id), "")
        if self.language_name != "as_samples":
            pair = self.language_name == "pair"
        return {
            "id": job.id,
            "status": job.status,
            "source_language_name": [job.language_id, name] if pair else name,
            "source_word_count": job.word_count,
            "cost": dollars(job.word_count * CENTS_PER_WORD),
            "intrusive_editing": job.intrusive_editing,
            "target_url": f"/jobs/{job.id}/target/",
            "created": job.created,
            "brief": job.brief,
            "delivery_date": job.created + 86_400,
            "source_url": f"/jobs/{job.id}/source/",
            "display_url": f"/jobs/{job.id}/",
            "callback_url": job.callback_url,
        }

    def _done(self) -> Response:
        return Response(200, raw=self.none_body, content_type="text/plain" if self.none_body else "application/json")

    def handle(self, request: Request) -> Response:
        if not self._authorized(request):
            response = error(401, "unauthorized", "HTTP Basic auth with the API key as password is required")
            response.headers["WWW-Authenticate"] = 'Basic realm="Wordy API"'
            return response
        if not request.path.startswith(PREFIX + "/"):
            return error(404, "not found", request.path)
        parts = request.path[len(PREFIX) :].strip("/").split("/")
        with self.lock:
            return self._route(request, parts)

    def _route(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        if method == "GET" and parts == ["account"]:
            return Response(200, {"balance": dollars(self.balance_cents)})
        if method == "GET" and parts == ["languages"]:
            return Response(200, LANGUAGES)
        if method == "GET" and parts == ["job"]:
            return Response(200, sorted(self.jobs))
        if method == "POST" and parts in (["job", "create"], ["job", "price"]):
            return self._create(request, price_only=parts[1] == "price")
        if len(parts) < 2 or parts[0] != "job" or not parts[1].isdigit() or int(parts[1]) not in self.jobs:
            return error(404, "not found", "no such job or route")
        job, action = self.jobs[int(parts[1])], "/".join(parts[2:])
        if method == "GET" and action == "":
            return Response(200, self._job_view(job, pair=False))
        if method == "GET" and action == "source":
            if isinstance(job.source, dict | str):
                return Response(200, job.source)
            return Response(200, raw=job.source.data, content_type=job.source.content_type)
        if method == "GET" and action == "target":
            return Response(200, job.target) if job.target is not None else error(404, "not found", "no edit yet")
        if method == "GET" and action == "conversation":
            return Response(200, job.conversation)
        if method == "POST" and action == "conversation":
            message = request.param("message")
            if not message:
                return error(400, "missing parameter", "message is required")
            self._message(job, self.customer_name, message, self.callback_own_messages)
            return self._done()
        if method == "POST" and action in ("pay", "confirm", "reject"):
            return self._transition(job, action, request.param("message"))
        return error(404, "not found", "no such route")

    def _transition(self, job: Job, action: str, message: str | None) -> Response:
        before, after = {"pay": ("acp", "aer"), "confirm": ("acr", "c"), "reject": ("acr", "aer")}[action]
        if job.status != before:
            return error(400, "invalid status", f"cannot {action} a job in status {job.status}")
        if action == "pay":
            cost = job.word_count * CENTS_PER_WORD
            if cost > self.balance_cents:
                return error(402, "insufficient funds", f"the job costs {dollars(cost)}")
            self.balance_cents -= cost
        if action == "reject":
            if not message:
                return error(400, "missing parameter", "message is required")
            self._message(job, self.customer_name, message, self.callback_own_messages)
        self.set_status(job.id, after)
        return self._done()

    def _create(self, request: Request, price_only: bool) -> Response:
        given = [name for name in ("content", "json") if request.param(name)]
        given += ["fileToUpload"] if request.files.get("fileToUpload") else []
        if len(given) != 1:
            return error(400, "invalid parameters", "give exactly one of fileToUpload, content, json")
        source: Any
        if given[0] == "json":
            try:
                source = json.loads(request.param("json") or "")
            except ValueError:
                source = None
            if not isinstance(source, dict) or any(isinstance(v, dict | list) for v in source.values()):
                return error(400, "invalid parameters", "json must be a flat dictionary")
        elif given[0] == "content":
            source = request.param("content")
        else:
            source = request.files["fileToUpload"][0]
        language = request.param("language_id", "2") or "2"
        if language not in LANGUAGES:
            return error(400, "invalid parameters", "unknown language_id")
        callback_url = request.param("callback_url") or None
        if callback_url is not None and not callback_url.startswith(("http://", "https://")):
            return error(400, "invalid parameters", "callback_url must be an http(s) URL")
        words = count_words(source)
        if price_only:
            return Response(200, dollars(words * CENTS_PER_WORD))
        job = Job(
            self.next_id,
            int(language),
            request.param("brief", "") or "",
            (request.param("intrusive_editing", "false") or "").lower() == "true",
            source,
            words,
            callback_url,
            int(time.time()),
        )
        self.jobs[job.id] = job
        self.next_id += 1
        return Response(200, self._job_view(job, pair=True))


def count_words(source: Any) -> int:
    if isinstance(source, dict):
        return sum(len(str(value).split()) for value in source.values())
    if isinstance(source, str):
        return len(source.split())
    return len(source.data.decode("utf-8", "replace").split())
