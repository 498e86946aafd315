"""POST /slack/actions: a Slack app's interactivity Request URL — button clicks and modal submissions.

Verified before anything is read: X-Slack-Signature is ``v0=`` HMAC-SHA256 of ``v0:<timestamp>:<raw body>``
with the signing secret of a configured slack_app sink (slack_sdk's SignatureVerifier, constant time),
and X-Slack-Request-Timestamp within 5 minutes; else 401. The payload (a form field ``payload`` holding
JSON) names one of our buttons or our modal, else 400 with the reason. Nothing here calls a platform:
an allowed action is stored and queued (store/actions.py) and a worker carries it out, so Slack gets its
200 well within its 3 seconds. An action that needs words (Reject…, Reply…) opens a modal first, with
views.open inside the trigger's 3-second life; its submission is the action.

Who may act is the source's ``actions.allow`` (and the action's own): a user listed by id, or a member
of a listed channel from the app's own workspace (a Slack Connect guest's team differs: refused). A
refusal is answered 200 as Slack expects, told to the person ephemerally, logged and kept in the trail.
A click Slack sends again, or a double click, names the same stay of the subject: one action.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import anyio
import structlog
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from receiver.responses import JSONResponse
from workhooks.config.schema import Config
from workhooks.config.sinks import SLACK_ACTION_PREFIX, SlackAppSink
from workhooks.core.clock import utc_now
from workhooks.core.mrkdwn import escape
from workhooks.core.redact import redact_text
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import Action, SourceSettings
from workhooks.store import actions

log = structlog.get_logger("workhooks.slack")

MAX_PAYLOAD = 64 * 1024  # bytes: Slack's interaction payloads are a few kB
TOLERANCE = 5 * 60
SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,31}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")
VIEW_ID = "workhooks_action"
TEXT_BLOCK, TEXT_ELEMENT = "wh_text", "text"
VIEWS_OPEN_TIMEOUT = 2  # seconds: the trigger lives 3


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Asked:
    """One interaction, read and checked: which sink's app, who, where, which action on what."""

    sink: str
    kind: str  # block_actions | view_submission
    user: str
    username: str
    user_team: str | None  # the workspace the person belongs to (user.team_id)
    channel: str | None
    message_ts: str | None
    source: str
    subject: str
    action: str
    stay: str
    trigger_id: str | None = None
    view_id: str | None = None
    text: str | None = None


def verify(config: Config, body: bytes, timestamp: str | None, signature: str | None, now: float) -> str:
    """The slack_app sink whose signing secret signed ``body``; Refused(401) when none did."""
    apps = {name: sink for name, sink in config.sinks.items() if isinstance(sink, SlackAppSink)}
    if not apps:
        raise Refused(404, "no slack_app sink is configured")
    if timestamp is None or signature is None:
        raise Refused(401, "X-Slack-Signature and X-Slack-Request-Timestamp are required")
    if not TIMESTAMP.fullmatch(timestamp) or not SIGNATURE.fullmatch(signature):
        raise Refused(401, "malformed X-Slack-Signature or X-Slack-Request-Timestamp")
    try:
        body.decode("utf-8")  # SignatureVerifier decodes it, raising on anything else
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8: not a Slack interaction") from None
    if abs(now - int(timestamp)) > TOLERANCE:
        raise Refused(401, "X-Slack-Request-Timestamp is more than 5 minutes away (a replayed request?)")
    for name, sink in apps.items():
        if SignatureVerifier(sink.signing_secret.get_secret_value()).is_valid(body, timestamp, signature):
            return name
    raise Refused(401, "signature does not match any slack_app sink's signing secret")


def _text(value: Any, limit: int = 255) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Refused(400, "payload is missing a field Slack always sends")
    return value


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _target(config: Config, raw: Any) -> tuple[str, str, str, str]:
    """(source, subject, action, stay) from a button's value or a modal's private_metadata."""
    try:
        found = json.loads(raw) if isinstance(raw, str) and len(raw) <= 3000 else None
    except ValueError:
        found = None
    if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in ("s", "j", "a", "y")):
        raise Refused(400, "not a workhooks action (its value is not ours)")
    source, subject, action, stay = found["s"], found["j"], found["a"], found["y"]
    settings = config.sources.get(source)
    if settings is None or action not in PLATFORMS[settings.platform].actions:
        raise Refused(400, "unknown source or action")
    return source, subject, action, stay


def parse(config: Config, sink: str, body: bytes) -> Asked | None:
    """The interaction in ``body``; None for one that needs nothing (a link button, a modal closed)."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=4)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, RecursionError):
        raise Refused(400, "body is not a Slack interaction (a form with a JSON payload field)") from None
    if not isinstance(payload, dict):
        raise Refused(400, "payload is not a JSON object")
    kind = payload.get("type")
    user = _obj(payload.get("user"))
    user_id = _text(user.get("id"), 64)
    if not SLACK_USER.fullmatch(user_id):
        raise Refused(400, "payload's user id is not a Slack id")
    same = user.get("team_id") if isinstance(user.get("team_id"), str) else None
    username = str(user.get("username") or user.get("name") or "")[:80]
    if kind == "block_actions":
        acted = payload.get("actions")
        if not isinstance(acted, list) or len(acted) != 1 or not isinstance(acted[0], dict):
            raise Refused(400, "block_actions without exactly one action")
        action_id = acted[0].get("action_id")
        if not isinstance(action_id, str) or not action_id.startswith(SLACK_ACTION_PREFIX):
            raise Refused(400, "unknown action (not one of workhooks' buttons)")
        if "value" not in acted[0] and acted[0].get("url"):
            return None  # a link button (Open order): Slack opened it, nothing to do
        source, subject, action, stay = _target(config, acted[0].get("value"))
        if action_id != SLACK_ACTION_PREFIX + action:
            raise Refused(400, "the button's action and its value disagree")
        channel, container, message = (_obj(payload.get(name)) for name in ("channel", "container", "message"))
        return Asked(sink, kind, user_id, username, same, channel.get("id"),
                     message.get("ts") or container.get("message_ts"), source, subject, action, stay,
                     trigger_id=_text(payload.get("trigger_id")))  # fmt: skip
    if kind == "view_submission":
        view = _obj(payload.get("view"))
        if view.get("callback_id") != VIEW_ID:
            raise Refused(400, "unknown view (not workhooks' modal)")
        meta = view.get("private_metadata")
        source, subject, action, stay = _target(config, meta)
        extra = _obj(json.loads(str(meta)))  # _target read it as JSON already
        text = _obj(_obj(_obj(_obj(view.get("state")).get("values")).get(TEXT_BLOCK)).get(TEXT_ELEMENT)).get("value")
        return Asked(sink, kind, user_id, username, same, extra.get("c"), extra.get("m"), source, subject, action,
                     stay, view_id=_text(view.get("id"), 64), text=text if isinstance(text, str) else None)  # fmt: skip
    if kind in ("view_closed", "block_suggestion"):
        return None
    raise Refused(400, f"interaction type {str(kind)[:40]!r} is not handled")


def modal(asked: Asked, action: Action, platform_name: str) -> dict[str, Any]:
    meta = json.dumps({"s": asked.source, "j": asked.subject, "a": asked.action, "y": asked.stay,
                       "c": asked.channel, "m": asked.message_ts}, separators=(",", ":"))  # fmt: skip
    return {
        "type": "modal",
        "callback_id": VIEW_ID,
        "title": {"type": "plain_text", "text": action.label.rstrip("…")[:24]},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": meta,
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": f"{platform_name} {asked.subject}"[:3000]}},
            {
                "type": "input",
                "block_id": TEXT_BLOCK,
                "label": {"type": "plain_text", "text": (action.ask or "Text")[:2000]},
                "element": {
                    "type": "plain_text_input",
                    "action_id": TEXT_ELEMENT,
                    "multiline": True,
                    "max_length": 3000,
                },
            },
        ],
    }


def _client(sink: SlackAppSink) -> AsyncWebClient:
    return AsyncWebClient(token=sink.bot_token.get_secret_value(), base_url=str(sink.base_url),
                          timeout=VIEWS_OPEN_TIMEOUT)  # fmt: skip


async def _tell(sink: SlackAppSink, channel: str | None, user: str, text: str) -> None:
    """An ephemeral message to the person who clicked (after Slack has its 200)."""
    if not channel:
        return
    try:
        await _client(sink).chat_postEphemeral(channel=channel, user=user, text=text)
    except (TimeoutError, SlackApiError, SlackClientError, OSError, aiohttp.ClientError) as error:
        log.warning("slack_ephemeral_failed", reason=type(error).__name__)


async def _own_team(request: Request, name: str, sink: SlackAppSink) -> str | None:
    """The app's own workspace: the sink's ``team_id``, else what auth.test says of its bot token (once)."""
    if sink.team_id is not None:
        return sink.team_id
    known: dict[str, str] = request.app.state.slack_teams
    if name not in known:
        try:
            answer = await _client(sink).auth_test()
        except (TimeoutError, SlackApiError, SlackClientError, OSError, aiohttp.ClientError) as error:
            log.warning("slack_team_unknown", sink=name, reason=type(error).__name__,
                        action="channel members are not admitted until auth.test answers (or set team_id)")  # fmt: skip
            return None
        team = answer.get("team_id")
        if not isinstance(team, str):
            return None
        known[name] = team
    return known[name]


async def _permits(request: Request, sink_name: str, sink: SlackAppSink, source: SourceSettings, action: Action,
                   asked: Asked) -> bool:  # fmt: skip
    """Listed by id; or a member of a listed channel from the app's own workspace (not a Slack Connect guest)."""
    if source.actions.permits(action, asked.user, None, False):
        return True
    if asked.channel is None or asked.user_team is None:
        return False
    own = await _own_team(request, sink_name, sink)
    return source.actions.permits(action, asked.user, asked.channel, own is not None and asked.user_team == own)


async def handle(request: Request) -> Response:
    config: Config = request.app.state.config
    body = await request.body()
    if len(body) > MAX_PAYLOAD:
        return _refuse(413, "body over the size limit")
    headers = request.headers
    try:
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        sink_name = verify(config, body, timestamp, signature, time.time())
        asked = parse(config, sink_name, body)
    except Refused as refused:
        return _refuse(refused.status, str(refused))
    if asked is None:
        return Response(status_code=200)
    structlog.contextvars.bind_contextvars(source=asked.source, subject=asked.subject, action=asked.action,
                                           slack_user=asked.user, retry=headers.get("x-slack-retry-num"))  # fmt: skip
    sink = config.sinks[sink_name]
    assert isinstance(sink, SlackAppSink)
    source = config.sources[asked.source]
    platform = PLATFORMS[source.platform]
    action = platform.actions[asked.action]
    actor = actions.Actor("slack", asked.user, asked.username, asked.channel)
    connection = request.app.state.sync_redis
    try:
        if not await _permits(request, sink_name, sink, source, action, asked):
            return await _refused(request, sink, asked, actor, action, platform.presenter.name)
        if asked.kind == "block_actions" and action.ask is not None:
            return await _open_modal(request, sink, asked, action, platform.presenter.name)
        if action.ask is not None and not (asked.text or "").strip():
            return JSONResponse({"response_action": "errors", "errors": {TEXT_BLOCK: "Please write something."}})
        record, new = await anyio.to_thread.run_sync(_ask, connection, config, asked, action, actor)
    except RedisError as error:
        structlog.contextvars.bind_contextvars(outcome="unavailable", reason=f"redis: {type(error).__name__}")
        return JSONResponse({"error": "storage unavailable, retry later"}, status_code=503)
    structlog.contextvars.bind_contextvars(outcome="queued" if new else "duplicate", action_id=record.id)
    if new:
        return Response(status_code=200)
    who = record.actor.shown() if record.actor.via == "slack" else escape(record.actor.shown())  # a Slack id: safe
    told = f"Already decided: {record.action} by {who} ({record.status})."
    return Response(status_code=200, background=BackgroundTask(_tell, sink, asked.channel, asked.user, told))


def _ask(connection: Any, config: Config, asked: Asked, action: Action, actor: actions.Actor) -> Any:
    once = actions.identity(asked.source, asked.subject, asked.action, action.once, asked.stay,
                            asked.view_id or asked.trigger_id)  # fmt: skip
    reply = actions.Reply(asked.sink, asked.channel, asked.message_ts) if asked.channel and asked.message_ts else None
    text = redact_text(asked.text, config.secrets()) if asked.text else None
    return actions.ask(connection, source=asked.source, subject=asked.subject, action=asked.action, actor=actor,
                       once_key=once, text=text, stay=asked.stay or None, reply=reply)  # fmt: skip


async def _refused(
    request: Request, sink: SlackAppSink, asked: Asked, actor: actions.Actor, action: Action, name: str
) -> Response:
    record = actions.ActionRecord(actions.new_id(), asked.source, asked.subject, asked.action, actor, utc_now(),
                                  "refused", stay=asked.stay or None)  # fmt: skip
    await anyio.to_thread.run_sync(actions.refused, request.app.state.sync_redis, record, "not on the allow list")
    structlog.contextvars.bind_contextvars(outcome="refused", reason="not on the source's actions.allow")
    told = (f"You are not allowed to {action.label.rstrip('…').lower()} {name} {asked.subject} from Slack "
            "(an admin can add you to the source's actions.allow).")  # fmt: skip
    return Response(status_code=200, background=BackgroundTask(_tell, sink, asked.channel, asked.user, told))


async def _open_modal(request: Request, sink: SlackAppSink, asked: Asked, action: Action, name: str) -> Response:
    connection = request.app.state.sync_redis
    first = await anyio.to_thread.run_sync(actions.first_time, connection, f"trigger:{asked.trigger_id}")
    if not first:  # Slack sent the click again: the modal is open already
        structlog.contextvars.bind_contextvars(outcome="duplicate")
        return Response(status_code=200)
    try:
        await _client(sink).views_open(trigger_id=asked.trigger_id, view=modal(asked, action, name))
    except (TimeoutError, SlackApiError, SlackClientError, OSError, aiohttp.ClientError) as error:
        reason = error.response.get("error") if isinstance(error, SlackApiError) else type(error).__name__
        structlog.contextvars.bind_contextvars(outcome="modal_failed", reason=f"views.open: {reason}")
        return Response(status_code=200)
    structlog.contextvars.bind_contextvars(outcome="modal_opened")
    return Response(status_code=200)


def _refuse(status: int, reason: str) -> JSONResponse:
    structlog.contextvars.bind_contextvars(outcome="rejected", reason=reason)
    return JSONResponse({"error": reason}, status_code=status)
