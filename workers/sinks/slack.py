"""A Slack incoming webhook: Block Kit with a plain ``text`` fallback; 429 honours Retry-After."""

from __future__ import annotations

import json
from typing import Any

from workers.messages import Message, render
from workers.sinks.http import GuardedClient, check_response
from workhooks.config.sinks import SlackSink as SlackSettings
from workhooks.core.events import Event
from workhooks.core.templates import Template

HEADER_LIMIT = 150


def escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(event: Event, message: Message) -> dict[str, Any]:
    title = message.title if len(message.title) <= HEADER_LIMIT else message.title[: HEADER_LIMIT - 1] + "…"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    if message.body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": escape(message.body)}})
    context = f"{message.platform} · {event.subject}" + (f" · {event.phase.replace('_', ' ')}" if event.phase else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(context)}]})
    if message.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": message.link}],
            }
        )
    text = message.title + (f"\n{message.body}" if message.body else "") + (f"\n{message.link}" if message.link else "")
    return {"text": text, "blocks": blocks}


class SlackSink:
    def __init__(self, settings: SlackSettings) -> None:
        self.url = settings.url.get_secret_value()
        self.client = GuardedClient(settings.timeout, settings.allow_private)

    def send(self, event: Event, template: Template | None = None) -> None:
        body = json.dumps(payload(event, render(event, template)), ensure_ascii=False).encode()
        check_response(self.client.post(self.url, body, {"content-type": "application/json"}))
