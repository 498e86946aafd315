"""What a person reads about a Shared Workforce task."""

from __future__ import annotations

from workhooks.core.events import Event
from workhooks.core.templates import Template
from workhooks.platforms.base import Presenter
from workhooks.platforms.sharedworkforce.callback import RESPONSES_RECEIVED

DEFAULTS = {
    RESPONSES_RECEIVED: Template(
        title="Shared Workforce task {{ data.task_id }}{% if data.title %} ({{ data.title }}){% endif %}: "
        "{{ data.responses | length }} response{{ 's' if data.responses | length != 1 }}",
        body="{% for r in data.responses %}{{ '- ' }}"
        "{% if r.get('answer') is string %}{{ r.answer }}"
        "{% else %}{{ (r.get('answer') or []) | join(', ') }}{% endif %}"
        "{% if r.get('username') %} ({{ r.username }}){% endif %}\n{% endfor %}",
    ),
}


def link(event: Event) -> str | None:
    """The callback's own Link header when it had one, else the task's page."""
    given = event.data.get("link")
    if isinstance(given, str):
        return given
    return f"https://sharedworkforce.com/tasks/{event.data['task_id']}" if "task_id" in event.data else None


PRESENTER = Presenter(name="Shared Workforce", defaults=DEFAULTS, link=link)
