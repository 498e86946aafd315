"""A Slack app's bot: one thread per job/task/order, its parent kept current, with buttons to act.

The first event of a subject posts the parent message: the subject, its status and phase, the latest
event, and a button for each action that applies now and that the source allows anyone to take. Each
later event is a reply in the parent's thread (``thread_ts``), after chat.update has brought the parent
up to date, so a busy channel shows one line per subject. The parent's (channel, ts) is kept in Redis
(store/actions.py); a parent that is gone (chat.update answers message_not_found) starts a new thread
with this event. Deliveries of one subject to one sink go one at a time, in order (docs/delivery.md), so
a parent is posted once.

Slack's errors: HTTP 429 holds the sink for Retry-After; invalid_auth, channel_not_found, not_in_channel,
missing_scope and their kind cannot be cured by retrying (dead letters, saying which).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from workers import state as states
from workers.exceptions import DeliveryError
from workers.messages import render
from workers.sinks import context
from workers.sinks.http import allowed
from workers.sinks.slack import HEADER_LIMIT, TEXT_LIMIT, fit, payload
from workhooks.config.schema import Config
from workhooks.config.sinks import SLACK_ACTION_PREFIX
from workhooks.config.sinks import SlackAppSink as SlackAppSettings
from workhooks.core.events import Event
from workhooks.core.headers import retry_after
from workhooks.core.mrkdwn import escape
from workhooks.core.templates import Template
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import Action, SourceSettings, State
from workhooks.store import actions, stays
from workhooks.store.actions import ActionRecord

GONE = ("message_not_found", "cant_update_message", "thread_not_found", "channel_not_found")
PERMANENT = ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope",
             "not_in_channel", "channel_not_found", "is_archived", "no_permission", "invalid_blocks",
             "invalid_arguments", "msg_too_long")  # fmt: skip
OPEN = ("queued", "sending", "done", "unknown")  # a once-action in these states is not offered again this stay
LATEST_LIMIT = 600  # characters of the latest event's body the parent shows (its reply has it all)


def button_value(source: str, subject: str, action: str, stay: str | None) -> str:
    """What a button carries back (Slack signs the interaction it comes in): which action, on what, when."""
    return json.dumps({"s": source, "j": subject, "a": action, "y": stay or ""}, separators=(",", ":"))


def offered(source: SourceSettings, state: State | None, trail: list[ActionRecord]) -> list[Action]:
    """The actions a button is shown for: they apply now, someone may take them, not already taken this stay."""
    platform = PLATFORMS[source.platform]
    stay = stays.entry(state)
    decided = any(record.stay == stay and record.status in OPEN for record in trail if _once(source, record.action))
    return [
        action
        for action in platform.actions_for(state, source)
        if source.actions.enabled(action) and not (action.once and decided)  # one decision per stay
    ]


def _once(source: SourceSettings, name: str) -> bool:
    found = PLATFORMS[source.platform].actions.get(name)
    return found is not None and found.once


def _button(source_name: str, source: SourceSettings, subject: str, state: State, action: Action) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": SLACK_ACTION_PREFIX + action.name,
        "text": {"type": "plain_text", "text": action.label},
    }
    if action.link is not None:
        button["url"] = action.link(source, subject, state)
        return button
    button["value"] = button_value(source_name, subject, action.name, stays.entry(state))
    if action.style is not None:
        button["style"] = action.style
    if action.confirm is not None and action.ask is None:  # an action asking for text confirms in its modal
        button["confirm"] = {
            "title": {"type": "plain_text", "text": "Are you sure?"},
            "text": {"type": "plain_text", "text": action.confirm},
            "confirm": {"type": "plain_text", "text": action.label.rstrip("…")},
            "deny": {"type": "plain_text", "text": "Cancel"},
        }
    return button


def parent(
    config: Config, source_name: str, subject: str, state: State | None, latest: str, trail: list[ActionRecord]
) -> tuple[str, list[dict[str, Any]]]:
    """The parent message of a subject's thread: (fallback text, blocks)."""
    source = config.sources[source_name]
    platform = PLATFORMS[source.platform]
    state = state or {}
    status = stays.shown_status(state) or "—"
    stay = stays.of(state)
    phase = str(stay.get("phase") or "").replace("_", " ")
    since = stay.get("since")
    when = f" since {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(float(since)))}" if since else ""
    title = f"{platform.presenter.name} {subject}"
    line = f"*{escape(str(status))}*" + (f" · {escape(phase)}" if phase else "") + escape(when)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": fit(title, HEADER_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": fit(f"{line}\n{escape(latest)}", TEXT_LIMIT)}},
    ]
    if trail:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": fit(said(trail[0]), TEXT_LIMIT)}]})
    buttons = [_button(source_name, source, subject, state, action) for action in offered(source, state, trail)]
    buttons = [button for button in buttons if "url" not in button or button["url"]]
    if buttons:
        blocks.append({"type": "actions", "block_id": "wh_actions", "elements": buttons[:25]})
    return escape(f"{title}: {status} — {latest}"), blocks  # the notification's text: escaped like the blocks


VERBS = {"confirm": "Confirmed", "reject": "Rejected", "reply": "Replied", "pay": "Paid", "correct": "Corrected",
         "comment": "Commented", "close": "Closed", "reopen": "Reopened"}  # fmt: skip


def said(record: ActionRecord) -> str:
    """One line on the latest action: "Confirmed by @alice at 10:42 — Wordy answered 200"."""
    verb = VERBS.get(record.action, record.action.capitalize())
    who = record.actor.shown() if record.actor.via == "slack" else escape(record.actor.shown())  # a Slack id: safe
    at = (record.finished_at or record.requested_at)[11:16]
    if record.status in ("queued", "sending"):
        return f"{verb} by {who} — sending…"
    if record.status == "done":
        return f"{verb} by {who} at {at} — {escape(record.answer)}"
    if record.status == "refused":
        return f"{record.action} refused for {who} at {at}: {escape(record.answer)}"
    failed = "outcome unknown" if record.status == "unknown" else "failed"
    return f"{record.action} by {who} at {at} {failed}: {escape(record.answer)}"


def _slack_error(error: SlackApiError) -> DeliveryError:
    code = error.response.status_code
    reason = str(error.response.get("error") or f"HTTP {code}")
    if code == 429:
        wait = retry_after(error.response.headers.get("Retry-After") or error.response.headers.get("retry-after"))
        return DeliveryError(f"Slack answered 429 ({reason})", 429, retry_after=wait)
    if code >= 500:
        return DeliveryError(f"Slack answered {code}", code)
    return DeliveryError(f"Slack refused: {reason}", code, permanent=reason in PERMANENT)


class SlackAppSink:
    def __init__(self, settings: SlackAppSettings, name: str = "") -> None:
        self.name = name
        self.settings = settings
        self.client = WebClient(
            token=settings.bot_token.get_secret_value(), base_url=str(settings.base_url), timeout=int(settings.timeout)
        )

    @property
    def connection(self) -> redis.Redis:
        return context.redis_connection()

    def _guard(self) -> None:
        url = urlsplit(str(self.settings.base_url))
        allowed(url.hostname or "", url.port or (443 if url.scheme == "https" else 80), self.settings.allow_private)

    def call(self, method: str, **arguments: Any) -> dict[str, Any]:
        """One Web API call; a DeliveryError when Slack refused it (``.status_code``, reason in the message)."""
        self._guard()
        try:
            response = self.client.api_call(method, json=arguments)
        except SlackApiError as error:
            raise _slack_error(error) from None
        except (SlackClientError, OSError) as error:
            raise DeliveryError(f"Slack unreachable: {type(error).__name__}") from None
        data = response.data
        return data if isinstance(data, dict) else {}

    def send(self, event: Event, template: Template | None = None) -> None:
        config = context.config()
        if event.source not in config.sources:  # a derived or removed source's event: a plain message
            self.call("chat.postMessage", channel=self.settings.channel, **payload(event, render(event, template)))
            return
        message = render(event, template)
        current = states.load(self.connection, event.source, event.subject)
        trail = actions.for_subject(self.connection, event.source, event.subject)
        latest = message.title + (f"\n{fit(message.body, LATEST_LIMIT)}" if message.body else "")
        text, blocks = parent(config, event.source, event.subject, current, latest, trail)
        found = actions.thread(self.connection, self.name, event.source, event.subject)
        if found is not None:
            try:
                self.call("chat.update", channel=found.channel, ts=found.ts, text=text, blocks=blocks)
            except DeliveryError as error:
                if not any(reason in str(error) for reason in GONE):
                    raise
                actions.forget_thread(self.connection, self.name, event.source, event.subject)
                found = None  # the parent was deleted: this event starts a new thread
            else:
                actions.keep_thread(self.connection, self.name, event.source, event.subject,
                                    actions.Thread(found.channel, found.ts, latest))  # fmt: skip
                self.call("chat.postMessage", channel=found.channel, thread_ts=found.ts, **payload(event, message))
                return
        posted = self.call("chat.postMessage", channel=self.settings.channel, text=text, blocks=blocks)
        ts, channel = posted.get("ts"), posted.get("channel") or self.settings.channel
        if isinstance(ts, str):
            actions.keep_thread(self.connection, self.name, event.source, event.subject,
                                actions.Thread(str(channel), ts, latest))  # fmt: skip

    def after_action(
        self, config: Config, record: ActionRecord, current: State | None, redis_connection: redis.Redis
    ) -> None:
        """Show what an action did on the parent (buttons for what applies now); a failure also in the thread."""
        found = actions.thread(redis_connection, self.name, record.source, record.subject)
        here = record.reply if record.reply is not None and record.reply.sink == self.name else None
        if here is not None:
            channel, ts = here.channel, here.ts
        elif found is not None:
            channel, ts = found.channel, found.ts
        else:
            return
        trail = actions.for_subject(redis_connection, record.source, record.subject)
        latest = found.latest if found is not None else ""
        text, blocks = parent(config, record.source, record.subject, current, latest, trail)
        self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)
        if record.status not in ("done", "queued", "sending"):
            self.call("chat.postMessage", channel=channel, thread_ts=ts, text=said(record))
