"""What a person reads about a WorkTaps account."""

from __future__ import annotations

from workhooks.core.templates import Template
from workhooks.platforms.base import Presenter
from workhooks.platforms.worktaps.poller import CREATED, REMOVED, UPDATED

DEFAULTS = {
    CREATED: Template(title="WorkTaps: {{ data.name }} joined", body="{{ data.email or '' }}"),
    UPDATED: Template(
        title="WorkTaps: {{ data.name }} updated",
        body="{% for field, change in data.changed.items() %}{{ field }}: {{ change['from'] }} → {{ change['to'] }}\n"
        "{% endfor %}",
    ),
    REMOVED: Template(title="WorkTaps: {{ data.name }} removed", body="{{ data.email or '' }}"),
}
PRESENTER = Presenter(name="WorkTaps", defaults=DEFAULTS)
