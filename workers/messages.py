"""What a person reads: title, body and link for an event, by its platform's defaults or a route's template.

Templates run in Jinja2's sandbox with the event's fields (``type``, ``subject``, ``phase``,
``source``, ``data``, ``id``, ``time``) plus ``link``, ``platform`` and what the platform's
presenter adds (Wordy: ``headline``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from workers.exceptions import DeliveryError
from workhooks.core import derived
from workhooks.core.events import Event
from workhooks.core.templates import Template
from workhooks.platforms import of_event_type

MAX_TITLE = 250
MAX_BODY = 3000

FALLBACK = Template(title="{{ platform }} {{ subject }}: {{ type }}", body="{{ data | tojson }}")


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    link: str | None
    platform: str


@functools.cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return _environment().from_string(source)


def _render(source: str, context: dict[str, Any], limit: int) -> str:
    try:
        text = str(_compiled(source).render(context)).strip()
    except TemplateError as error:
        raise DeliveryError(f"template failed: {type(error).__name__}: {error}", permanent=True) from None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(event: Event, template: Template | None = None) -> Message:
    platform = of_event_type(event.type)
    presenter = platform.presenter if platform is not None else None
    if presenter is not None:
        default = presenter.defaults.get(event.type, FALLBACK)
    else:  # workhooks' own events (reminders, deadlines, health): core/derived.py says how they read
        default = derived.DEFAULTS.get(event.type, FALLBACK)
    context: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "subject": event.subject,
        "phase": event.phase,
        "source": event.source,
        "time": event.time,
        "data": event.data,
        "link": presenter.link(event) if presenter is not None else None,
        "platform": presenter.name if presenter is not None else event.type.split(".", 1)[0].title(),
        "headline": "",
        **(presenter.context(event) if presenter is not None else {}),
    }
    title = (template.title if template and template.title else None) or default.title or ""
    body = (template.body if template and template.body else None) or default.body or ""
    return Message(
        title=_render(title, context, MAX_TITLE),
        body=_render(body, context, MAX_BODY),
        link=context["link"],
        platform=context["platform"],
    )
