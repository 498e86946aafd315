"""What a person reads: title, body and link for an event, by default per type or by a route's template.

Templates run in Jinja2's sandbox with the event's fields (``type``, ``subject``, ``phase``,
``source``, ``data``, ``id``, ``time``) plus ``link`` and ``platform``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from receiver.config import Template
from receiver.events import Event
from workers.exceptions import DeliveryError

PLATFORM_NAMES = {
    "wordy": "Wordy",
    "sharedworkforce": "Shared Workforce",
    "workreduce": "WorkReduce",
    "worksection": "Worksection",
    "worktaps": "WorkTaps",
}
WORDY_HEADLINES = {
    "awc": "waiting for a word count",
    "acp": "awaiting your payment",
    "aer": "with the editor",
    "acr": "awaiting your review",
    "c": "complete",
}
MAX_TITLE = 250
MAX_BODY = 3000

DEFAULTS: dict[str, Template] = {
    "wordy.job.status_changed": Template(
        title="Wordy job {{ data.job_id }}: {{ headline }}",
        body="Status changed from {{ data.previous_status_label }} to {{ data.status_label }}.",
    ),
    "wordy.job.message_added": Template(
        title="Wordy job {{ data.job_id }}: new message{% if data.author %} from {{ data.author }}{% endif %}",
        body="{{ data.message }}",
    ),
    "sharedworkforce.task.responses_received": Template(
        title="Shared Workforce task {{ data.task_id }}{% if data.title %} ({{ data.title }}){% endif %}: "
        "{{ data.responses | length }} response{{ 's' if data.responses | length != 1 }}",
        body="{% for r in data.responses %}{{ '- ' }}"
        "{% if r.get('answer') is string %}{{ r.answer }}"
        "{% else %}{{ (r.get('answer') or []) | join(', ') }}{% endif %}"
        "{% if r.get('username') %} ({{ r.username }}){% endif %}\n{% endfor %}",
    ),
    "workreduce.order.created": Template(
        title="WorkReduce order {{ data.order_number }} created: {{ data.name }}",
        body="Status {{ data.status }}{% if data.get('due_date') %}, due {{ data.due_date }}{% endif %}"
        "{% if data.get('team') %}, team {{ data.team }}{% endif %}.",
    ),
    "workreduce.order.status_changed": Template(
        title="WorkReduce order {{ data.order_number }} is {{ data.status }}"
        "{% if data.status == 'Delivered' %}, please approve{% endif %}",
        body="{{ data.name }}: {{ data.previous_status }} → {{ data.status }}"
        "{% if data.get('requester_email') %} (requested by {{ data.requester_email }}){% endif %}.",
    ),
    "worksection.task.created": Template(
        title="Worksection task created: {{ data.name }}", body="{{ data.page or '' }}"
    ),
    "worksection.task.status_changed": Template(
        title="Worksection task {{ data.change }}: {{ data.name }}",
        body="{{ data.previous_status }} → {{ data.status }}",
    ),
    "worksection.task.comment_added": Template(
        title="Worksection task {{ data.name }}: comment{% if data.author %} from {{ data.author }}{% endif %}",
        body="{{ data.text or '' }}",
    ),
    "worktaps.account.created": Template(title="WorkTaps: {{ data.name }} joined", body="{{ data.email or '' }}"),
    "worktaps.account.updated": Template(
        title="WorkTaps: {{ data.name }} updated",
        body="{% for field, change in data.changed.items() %}{{ field }}: {{ change['from'] }} → {{ change['to'] }}\n"
        "{% endfor %}",
    ),
    "worktaps.account.removed": Template(title="WorkTaps: {{ data.name }} removed", body="{{ data.email or '' }}"),
}
FALLBACK = Template(title="{{ platform }} {{ subject }}: {{ type }}", body="{{ data | tojson }}")


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    link: str | None
    platform: str


def platform_of(event: Event) -> str:
    prefix = event.type.split(".", 1)[0]
    return PLATFORM_NAMES.get(prefix, prefix.title())


def link_of(event: Event) -> str | None:
    if event.type.startswith("wordy.") and "job_id" in event.data:
        return f"https://wordy.com/jobs/{event.data['job_id']}/"
    if event.type.startswith("sharedworkforce.") and "task_id" in event.data:
        return f"https://sharedworkforce.com/tasks/{event.data['task_id']}"
    return None


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
    default = DEFAULTS.get(event.type, FALLBACK)
    context: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "subject": event.subject,
        "phase": event.phase,
        "source": event.source,
        "time": event.time,
        "data": event.data,
        "link": link_of(event),
        "platform": platform_of(event),
        "headline": WORDY_HEADLINES.get(str(event.data.get("status")), event.data.get("status_label", "")),
    }
    title = (template.title if template and template.title else None) or default.title or ""
    body = (template.body if template and template.body else None) or default.body or ""
    return Message(
        title=_render(title, context, MAX_TITLE),
        body=_render(body, context, MAX_BODY),
        link=context["link"],
        platform=context["platform"],
    )
