"""What a person reads about a Worksection task."""

from __future__ import annotations

from workhooks.core.templates import Template
from workhooks.platforms.base import Presenter
from workhooks.platforms.worksection.poller import COMMENT_ADDED, CREATED, STATUS_CHANGED

DEFAULTS = {
    CREATED: Template(title="Worksection task created: {{ data.name }}", body="{{ data.page or '' }}"),
    STATUS_CHANGED: Template(
        title="Worksection task {{ data.change }}: {{ data.name }}",
        body="{{ data.previous_status }} → {{ data.status }}",
    ),
    COMMENT_ADDED: Template(
        title="Worksection task {{ data.name }}: comment{% if data.author %} from {{ data.author }}{% endif %}",
        body="{{ data.text or '' }}",
    ),
}
PRESENTER = Presenter(name="Worksection", defaults=DEFAULTS)
