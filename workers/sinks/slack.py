"""A Slack incoming webhook: Block Kit with a plain ``text`` fallback; 429 honours Retry-After.

Text is escaped first and cut after, so what is sent stays within Slack's limits (escaping makes
text longer: cutting first let a 3,000-character body grow past the section limit, a 400).
"""

from __future__ import annotations

import json
from typing import Any

from workers.messages import Message, render
from workers.sinks.http import GuardedClient, check_response
from workhooks.config.sinks import SlackSink as SlackSettings
from workhooks.core.events import Event
from workhooks.core.mrkdwn import escape
from workhooks.core.templates import Template

HEADER_LIMIT = 150  # a header block's plain_text
TEXT_LIMIT = 3000  # a section's or a context element's text object
LONGEST_ENTITY = len("&amp;")
ELLIPSIS = "…"


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16 code units: never more than Slack counts


def fit(text: str, limit: int) -> str:
    """``text`` (already escaped) within ``limit``, cut between characters and never inside an entity."""
    if sum(map(_units, text)) <= limit:
        return text
    room, end = limit - len(ELLIPSIS), 0
    for char in text:
        room -= _units(char)
        if room < 0:
            break
        end += 1
    cut = text[:end]
    start = cut.rfind("&", max(0, end - LONGEST_ENTITY + 1))  # an "&" this near the end may start a cut entity
    if start != -1 and ";" not in cut[start:]:
        cut = cut[:start]
    return cut + ELLIPSIS


def payload(event: Event, message: Message) -> dict[str, Any]:
    title = fit(message.title, HEADER_LIMIT)  # plain_text: shown as it is, so not escaped
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    if message.body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": fit(escape(message.body), TEXT_LIMIT)}})
    context = f"{message.platform} · {event.subject}" + (f" · {event.phase.replace('_', ' ')}" if event.phase else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": fit(escape(context), TEXT_LIMIT)}]})
    if message.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": message.link}],
            }
        )
    text = message.title + (f"\n{message.body}" if message.body else "") + (f"\n{message.link}" if message.link else "")
    return {"text": escape(text), "blocks": blocks}


class SlackSink:
    def __init__(self, settings: SlackSettings, name: str = "") -> None:
        self.name = name
        self.url = settings.url.get_secret_value()
        self.client = GuardedClient(settings.timeout, settings.allow_private)

    def send(self, event: Event, template: Template | None = None) -> None:
        body = json.dumps(payload(event, render(event, template)), ensure_ascii=False).encode()
        check_response(self.client.post(self.url, body, {"content-type": "application/json"}))
