"""Slack Web API emulator, plus interaction requests signed the way Slack signs them (public docs alone).

`SlackApi` serves POST (or GET) /api/<method> (`base_url`) for auth.test, chat.postMessage, chat.update,
chat.postEphemeral, chat.delete and views.open; JSON or form bodies, the token as `Authorization: Bearer`
or a `token` field. Errors as Slack gives them: HTTP 200 with {"ok": false, "error": ...}; HTTP 429 with
Retry-After and {"ok": false, "error": "ratelimited"} when rate limited.

Assumptions where the docs are silent or vague:
- thread_ts of an unknown or deleted message: SDK tracker reports say Slack answers ok and files the reply
  under a thread nobody sees. unknown_thread="hidden" (default) does that: in thread(), not in messages();
  "channel" posts it top level; "error" answers thread_not_found. thread_ts not digits.digits:
  invalid_thread_ts (reported). A reply to a reply joins its parent's thread ("use its parent instead").
- Cheap documented Block Kit limits only: 50 blocks a message, 100 a modal, section text 3000, header 150,
  block_id 255, fields 10, actions elements 25 -> invalid_blocks (with errors and response_metadata, as real
  answers have them); blocks that are not a JSON list -> invalid_blocks_format. Text past 40,000 is
  truncated ("or risk truncation"). chat.update keeps what it is not given; [] clears.
- Only the bot's own messages can be updated or deleted: add_message() seeds a person's.
- views.open: trigger_id not "digits.digits.hex" or never issued -> invalid_trigger_id; older than
  trigger_ttl (3 s, the modals guide) -> expired_trigger_id; used before -> exchanged_trigger_id.
- per_second (chat.postMessage: 1 a second per channel) is a 1 s sliding window per (method, channel);
  refused calls do not count. A token in a JSON body is ignored (JSON callers send a bearer header).
- A response_url handed out by block_action(api=...) is recorded as a "response_url" call, answered ok.
- Interactivity: one `payload` form field of compact JSON. X-Slack-Retry-Num/-Reason are documented for
  the Events API only; the builders add them on request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, urlencode

from tests.emulators.base import Emulator, Request, Response

TS = re.compile(r"^\d+\.\d+$")
TRIGGER = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")
SCOPES = dict.fromkeys(("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete"), "chat:write")
MAX_TEXT = 40_000
VERIFICATION_TOKEN = "verification-token"
StateValues = Mapping[str, Mapping[str, Mapping[str, Any]]]  # view.state.values: block_id -> action_id -> value


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def fail(error: str, *messages: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": error, **fields}
    if messages:
        body["response_metadata"] = {"messages": [f"[ERROR] {m}" for m in messages]}
    return body


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def invalid_blocks(message: str) -> dict[str, Any]:
    return fail("invalid_blocks", message, errors=[message])


def check_blocks(blocks: Any, limit: int) -> dict[str, Any] | None:
    """The cheap documented Block Kit limits; None when they hold."""
    if not isinstance(blocks, list):
        return fail("invalid_blocks_format")
    if len(blocks) > limit:
        return invalid_blocks(f"must be less than {limit + 1} items [json-pointer:/blocks]")
    caps = {"section": 3000, "header": 150}
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return invalid_blocks(f"missing required field: type {where}]")
        kind, text = block["type"], block.get("text")
        length = len(str(text.get("text", ""))) if isinstance(text, dict) else 0
        if kind in caps and length > caps[kind]:
            return invalid_blocks(f"must be less than {caps[kind] + 1} characters {where}/text/text]")
        if len(str(block.get("block_id", ""))) > 255:
            return invalid_blocks(f"must be less than 256 characters {where}/block_id]")
        elements = block.get("elements") if kind == "actions" else None
        too_many = len(block.get("fields") or []) > 10 or len(elements or []) > 25
        if too_many:
            return invalid_blocks(f"too many items {where}]")
    return None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str
    bot_id: str | None
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    thread_ts: str | None = None  # a reply's parent; a parent's own ts once it has replies
    reply_broadcast: bool = False
    deleted: bool = False
    edited: dict[str, str] | None = None
    replies: list[Message] = field(default_factory=list)

    def view(self, team: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "text": self.text, "user": self.user, "ts": self.ts, "team": team}
        if self.bot_id:
            out["bot_id"] = self.bot_id
        for name in ("blocks", "attachments", "thread_ts", "edited"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        live = [reply for reply in self.replies if not reply.deleted]
        if live:
            users = list(dict.fromkeys(reply.user for reply in live))
            out.update(reply_count=len(live), reply_users=users, reply_users_count=len(users))
            out.update(latest_reply=live[-1].ts, replies=[{"user": r.user, "ts": r.ts} for r in live])
        return out


@dataclass
class Call:
    method: str
    args: dict[str, Any]  # parsed: JSON values, blocks/view/attachments decoded; the token removed
    headers: dict[str, str]  # lower-cased, without Authorization
    token: str | None
    token_in: Literal["header", "form", None]
    status: int = 200
    answer: Any = None


class SlackApi(Emulator):
    def __init__(
        self,
        token: str = "xoxb-0000000000-0000000000000-emulator",  # noqa: S107
        scopes: tuple[str, ...] = ("chat:write",),
        channels: Mapping[str, str] | None = None,  # id -> name
        team_id: str = "T0000000001",
        team_domain: str = "emulated",
        bot_user_id: str = "U0000000BOT",
        bot_id: str = "B0000000001",
        app_id: str = "A0000000001",
        unknown_thread: Literal["hidden", "channel", "error"] = "hidden",
        rate_limit_every: int | None = None,  # every Nth call answers 429
        retry_after: int = 1,
        per_second: Mapping[str, int] | None = None,  # method -> calls a second per channel
        trigger_ttl: float = 3.0,
        epoch: int = 1_700_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.token, self.scopes = token, set(scopes)
        self.channels = dict(channels or {"C0000000001": "general", "C0000000002": "random"})
        self.team_id, self.team_domain = team_id, team_domain
        self.bot_user_id, self.bot_id, self.app_id = bot_user_id, bot_id, app_id
        self.unknown_thread = unknown_thread
        self.rate_limit_every, self.retry_after = rate_limit_every, retry_after
        self.per_second = dict(per_second or {})
        self.trigger_ttl, self.clock = trigger_ttl, clock
        self.store: dict[str, dict[str, Message]] = {}
        self.ephemeral: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.triggers: dict[str, float | None] = {}  # trigger_id -> issued at (None once exchanged)
        self.log: list[Call] = []
        self._micros = epoch * 1_000_000
        self._windows: dict[tuple[str, str], list[float]] = {}
        self._serial = self._api_calls = 0

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    # ---- helpers for tests ----------------------------------------------------------------------------

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's timeline as conversations.history has it: top level and broadcast, not deleted."""
        with self.lock:
            found = self.store.get(channel, {}).values()
            top = [m for m in found if not m.deleted and (m.thread_ts in (None, m.ts) or m.reply_broadcast)]
            return [m.view(self.team_id) for m in top]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Parent (when it exists and is not deleted) then replies, oldest first."""
        with self.lock:
            found = [m for m in self.store.get(channel, {}).values() if not m.deleted]
            return [m.view(self.team_id) for m in found if m.ts == ts or (m.thread_ts == ts != m.ts)]

    def parent(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self.lock:
            message = self.store.get(channel, {}).get(ts)
            return None if message is None or message.deleted else message.view(self.team_id)

    def ephemerals(self, channel: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.ephemeral if e["channel"] == channel]

    def add_message(self, channel: str, text: str, user: str = "U0000000001") -> str:
        """A message from someone else (a person): the bot may not update or delete it."""
        with self.lock:
            message = Message(channel, self._next_ts(), text, user, None)
            self.store.setdefault(channel, {})[message.ts] = message
            return message.ts

    def delete(self, channel: str, ts: str) -> None:
        with self.lock:
            self.store[channel][ts].deleted = True

    def issue_trigger(self) -> str:
        """A fresh trigger_id, as Slack puts in an interaction payload; valid for `trigger_ttl` seconds."""
        with self.lock:
            self._serial += 1
            trigger = f"{self._micros // 1_000_000}{self._serial:04d}.7890123.{secrets.token_hex(16)}"
            self.triggers[trigger] = self.clock()
            return trigger

    def calls(self, method: str | None = None) -> list[Call]:
        with self.lock:
            return [call for call in self.log if method in (None, call.method)]

    # ---- the API --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self.lock:
            if request.path.startswith("/actions/"):  # a response_url the builders handed out: recorded only
                self.log.append(self._parse("response_url", request))
                return Response(200, ok())
            if not request.path.startswith("/api/"):
                return Response(404, raw=b"Not Found", content_type="text/plain")
            call = self._parse(request.path[len("/api/") :], request)
            self.log.append(call)
            self._api_calls += 1
            status, answer, headers = self._answer(call, request)
            call.status, call.answer = status, answer
            return Response(status, answer, headers, content_type="application/json; charset=utf-8")

    def _parse(self, method: str, request: Request) -> Call:
        args: dict[str, Any] = {k: v[0] for k, v in request.query.items()}
        args.update({k: v[0] for k, v in request.form.items()})
        form_token = args.pop("token", None)  # a token inside a JSON body is not read (bearer header only)
        if isinstance(request.json, dict):
            args.update({k: v for k, v in request.json.items() if k != "token"})
        for name in ("blocks", "attachments", "view", "metadata"):
            if isinstance(args.get(name), str):
                with contextlib.suppress(ValueError):  # left a string: the method answers it as malformed
                    args[name] = json.loads(args[name])
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and bearer:
            return Call(method, args, headers, bearer, "header")
        return Call(method, args, headers, form_token, "form" if form_token else None)

    def _answer(self, call: Call, request: Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        limited = (429, fail("ratelimited"), {"Retry-After": str(self.retry_after)})
        if self.rate_limit_every and self._api_calls % self.rate_limit_every == 0:
            return limited
        if not call.token:
            return 200, fail("not_authed"), {}
        if call.token != self.token:
            return 200, fail("invalid_auth"), {}
        needed = SCOPES.get(call.method)
        if needed and needed not in self.scopes:
            return 200, fail("missing_scope", needed=needed, provided=",".join(sorted(self.scopes))), {}
        if call.method in self.per_second and not self._admit(call):
            return limited
        handler = self.METHODS.get(call.method)
        answer = handler(self, call.args) if handler else fail("unknown_method")
        if request.content_type == "application/json" and "charset" not in request.headers["content-type"]:
            answer.update(warning="missing_charset", response_metadata={"warnings": ["missing_charset"]})
        return 200, answer, {}

    def _admit(self, call: Call) -> bool:
        now, key = self.clock(), (call.method, str(call.args.get("channel", "")))
        window = [at for at in self._windows.get(key, []) if now - at < 1.0]
        if len(window) >= self.per_second[call.method]:
            self._windows[key] = window
            return False
        self._windows[key] = [*window, now]
        return True

    def _next_ts(self) -> str:
        self._micros += 100
        return f"{self._micros // 1_000_000}.{self._micros % 1_000_000:06d}"

    def _channel(self, value: Any) -> str | None:
        name = str(value or "").lstrip("#")
        if name in self.channels:
            return name
        return next((cid for cid, cname in self.channels.items() if cname == name), None)

    def _content(self, args: Mapping[str, Any]) -> dict[str, Any] | None:
        """An error for the message content, or None: blocks checked, some text-like content required."""
        if "blocks" in args and (bad := check_blocks(args["blocks"], 50)):
            return bad
        if not (args.get("text") or args.get("blocks") or args.get("attachments") or args.get("markdown_text")):
            return fail("no_text")
        return None

    def _own(self, args: Mapping[str, Any], verb: str) -> Message | dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel not in self.channels:
            return fail("channel_not_found")
        message = self.store.get(channel, {}).get(str(args.get("ts", "")))
        if message is None or message.deleted:
            return fail("message_not_found")
        if message.user != self.bot_user_id:
            return fail(f"cant_{verb}_message")
        return message

    def auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        me = {"user": "emulator-bot", "user_id": self.bot_user_id, "bot_id": self.bot_id, "team_id": self.team_id}
        return ok(
            url=f"https://{self.team_domain}.slack.com/", team=self.team_domain, **me, is_enterprise_install=False
        )

    def post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if channel is None:
            return fail("channel_not_found")
        if bad := self._content(args):
            return bad
        thread_ts = args.get("thread_ts") or None
        text = str(args.get("text") or "")[:MAX_TEXT]
        message = Message(channel, "", text, self.bot_user_id, self.bot_id, args.get("blocks"))
        message.attachments = args.get("attachments")
        messages = self.store.setdefault(channel, {})
        if thread_ts is not None:
            thread_ts = str(thread_ts)
            if not TS.match(thread_ts):
                return fail("invalid_thread_ts", f"{thread_ts} is not a valid thread_ts")
            parent = messages.get(thread_ts)
            if parent is not None and parent.thread_ts not in (None, parent.ts):
                parent = messages.get(parent.thread_ts)  # a reply's ts: its parent's thread
            if parent is None or parent.deleted:
                if self.unknown_thread == "error":
                    return fail("thread_not_found")
                thread_ts = None if self.unknown_thread == "channel" else thread_ts
            else:
                thread_ts = parent.thread_ts = parent.ts
                parent.replies.append(message)
            message.thread_ts = thread_ts
            message.reply_broadcast = thread_ts is not None and truthy(args.get("reply_broadcast"))
        message.ts = self._next_ts()
        messages[message.ts] = message
        return ok(channel=channel, ts=message.ts, message=message.view(self.team_id))

    def update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._own(args, "update")
        if isinstance(message, dict):
            return message
        if bad := self._content(args):
            return bad
        if "text" in args:
            message.text = str(args["text"] or "")[:MAX_TEXT]
        message.blocks = args.get("blocks", message.blocks) or None
        message.attachments = args.get("attachments", message.attachments) or None
        message.edited = {"user": self.bot_user_id, "ts": self._next_ts()}
        view = message.view(self.team_id)
        return ok(channel=message.channel, ts=message.ts, text=message.text, message=view)

    def post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if channel is None:
            return fail("channel_not_found")
        if not args.get("user"):
            return fail("user_not_in_channel")
        if bad := self._content(args):
            return bad
        message_ts = self._next_ts()
        fields = ("user", "text", "blocks", "attachments", "thread_ts")
        self.ephemeral.append({"channel": channel, "message_ts": message_ts, **{k: args.get(k) for k in fields}})
        return ok(message_ts=message_ts)

    def chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._own(args, "delete")
        if isinstance(message, dict):
            return message
        message.deleted = True
        return ok(channel=message.channel, ts=message.ts)

    def views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        view = args.get("view")
        if not trigger or not isinstance(view, dict):
            field_name = "view" if trigger else "trigger_id"
            return fail("invalid_arguments", f"missing required field: {field_name}")
        if not TRIGGER.match(str(trigger)) or str(trigger) not in self.triggers:
            return fail("invalid_trigger_id")
        issued = self.triggers[str(trigger)]
        if issued is None:
            return fail("exchanged_trigger_id")
        if self.clock() - issued > self.trigger_ttl:
            return fail("expired_trigger_id")
        if view.get("type") != "modal" or not isinstance(view.get("title"), dict):
            return fail("invalid_arguments", "must provide a modal view with a title [json-pointer:/view]")
        if bad := check_blocks(view.get("blocks", []), 100):
            return bad
        self.triggers[str(trigger)] = None
        self._serial += 1
        view_id = f"V{self._serial:010d}"
        opened: dict[str, Any] = {"id": view_id, "team_id": self.team_id, "type": "modal", "callback_id": ""}
        opened.update({"private_metadata": "", "external_id": "", "clear_on_close": False, "notify_on_close": False})
        opened.update(view)
        opened.update(state={"values": {}}, hash=f"{self._micros // 1_000_000}.{secrets.token_hex(4)}")
        opened.update(previous_view_id=None, root_view_id=view_id, app_id=self.app_id, bot_id=self.bot_id)
        self.views.append({"trigger_id": trigger, "view": opened})
        return ok(view=opened)

    METHODS: Mapping[str, Callable[[SlackApi, dict[str, Any]], dict[str, Any]]] = {
        "auth.test": auth_test,
        "chat.postMessage": post_message,
        "chat.update": update,
        "chat.postEphemeral": post_ephemeral,
        "chat.delete": chat_delete,
        "views.open": views_open,
    }


# ---- interaction requests, as Slack sends them to an app's Request URL --------------------------------------


class Signed(NamedTuple):
    body: bytes
    headers: dict[str, str]

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(parse_qs(self.body.decode())["payload"][0])
        return parsed


def sign(signing_secret: str, timestamp: int | str, body: bytes | str) -> str:
    """X-Slack-Signature: "v0=" + hex HMAC-SHA256 of "v0:{timestamp}:{body}" keyed by the signing secret."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed(
    signing_secret: str,
    payload: Mapping[str, Any],
    timestamp: int | None = None,
    retry: tuple[int, str] | None = None,  # (X-Slack-Retry-Num, X-Slack-Retry-Reason), e.g. (1, "http_timeout")
) -> Signed:
    """A form body with one `payload` field holding the JSON, and Slack's headers, signed."""
    body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(stamp)}
    headers["X-Slack-Signature"] = sign(signing_secret, stamp, body)
    if retry is not None:
        headers.update({"X-Slack-Retry-Num": str(retry[0]), "X-Slack-Retry-Reason": retry[1]})
    return Signed(body, headers)


def _common(api: SlackApi | None, kind: str, user_id: str, team_id: str, trigger_id: str | None) -> dict[str, Any]:
    """The fields every interaction payload carries: who, where, the app, a trigger."""
    domain, app_id = (api.team_domain, api.app_id) if api else ("emulated", "A0000000001")
    name = f"user-{user_id.lower()}"
    return {
        "type": kind,
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "team": {"id": team_id, "domain": domain},
        "api_app_id": app_id,
        "token": VERIFICATION_TOKEN,  # the deprecated verification token: present, meant to be ignored
        "trigger_id": trigger_id or (api.issue_trigger() if api else f"{int(time.time())}.1.{secrets.token_hex(16)}"),
        "is_enterprise_install": False,
        "enterprise": None,
    }


def block_action(
    signing_secret: str,
    api: SlackApi | None = None,
    *,
    user_id: str = "U0000000001",
    team_id: str = "T0000000001",
    channel_id: str = "C0000000001",
    message_ts: str = "1700000000.000100",
    action_id: str = "approve",
    block_id: str = "actions",
    value: str = "yes",
    action_type: str = "button",
    trigger_id: str | None = None,
    response_url: str | None = None,
    state_values: StateValues | None = None,
    timestamp: int | None = None,
    retry: tuple[int, str] | None = None,  # (X-Slack-Retry-Num, X-Slack-Retry-Reason), e.g. (1, "http_timeout")
) -> Signed:
    """A click on a message's button (or other element). With `api`: the message's text and blocks as it holds
    them, a fresh trigger_id, a response_url on the emulator."""
    message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": ""}
    if api is not None:
        message = api.parent(channel_id, message_ts) or message
        response_url = response_url or f"{api.url}/actions/{team_id}/{secrets.token_hex(8)}"
    payload = _common(api, "block_actions", user_id, team_id, trigger_id)
    payload["container"] = {"type": "message", "message_ts": message_ts, "channel_id": channel_id}
    payload["container"]["is_ephemeral"] = False
    payload["channel"] = {"id": channel_id, "name": api.channels.get(channel_id, "") if api else "general"}
    payload.update(message=message, state={"values": dict(state_values or {})})
    payload["response_url"] = response_url or f"https://hooks.slack.invalid/actions/{secrets.token_hex(8)}"
    action = {"action_id": action_id, "block_id": block_id, "value": value, "type": action_type}
    payload["actions"] = [{**action, "action_ts": f"{time.time():.6f}"}]
    return signed(signing_secret, payload, timestamp, retry)


def view_submission(
    signing_secret: str,
    api: SlackApi | None = None,
    *,
    user_id: str = "U0000000001",
    team_id: str = "T0000000001",
    view_id: str | None = None,
    callback_id: str | None = None,
    private_metadata: str | None = None,
    state_values: StateValues | None = None,
    trigger_id: str | None = None,
    timestamp: int | None = None,
    retry: tuple[int, str] | None = None,  # (X-Slack-Retry-Num, X-Slack-Retry-Reason), e.g. (1, "http_timeout")
) -> Signed:
    """A modal submitted: by default the last view `api` opened, with its id, callback_id and private_metadata."""
    view: dict[str, Any] = dict(api.views[-1]["view"]) if api and api.views else {"id": "V0000000001", "blocks": []}
    view.update(team_id=team_id, type="modal", state={"values": dict(state_values or {})})
    view["id"] = view_id or view["id"]
    view["callback_id"] = view.get("callback_id", "") if callback_id is None else callback_id
    view["private_metadata"] = view.get("private_metadata", "") if private_metadata is None else private_metadata
    payload = _common(api, "view_submission", user_id, team_id, trigger_id)
    payload.update(view=view, response_urls=[])
    return signed(signing_secret, payload, timestamp, retry)


def text_input(value: str | None) -> dict[str, Any]:
    """One state value of a plain_text_input, for state_values={block_id: {action_id: text_input("...")}}."""
    return {"type": "plain_text_input", "value": value}
