"""What a person reads about a WorkReduce order."""

from __future__ import annotations

from workhooks.core.templates import Template
from workhooks.platforms.base import Presenter
from workhooks.platforms.workreduce.poller import CLOSED, CREATED, STATUS_CHANGED

DEFAULTS = {
    CREATED: Template(
        title="WorkReduce order {{ data.order_number }} created: {{ data.name }}",
        body="Status {{ data.status }}{% if data.get('due_date') %}, due {{ data.due_date }}{% endif %}"
        "{% if data.get('team') %}, team {{ data.team }}{% endif %}.",
    ),
    STATUS_CHANGED: Template(
        title="WorkReduce order {{ data.order_number }} is {{ data.status }}"
        "{% if data.status == 'Delivered' %}, please approve{% endif %}",
        body="{{ data.name }}: {{ data.previous_status }} → {{ data.status }}"
        "{% if data.get('requester_email') %} (requested by {{ data.requester_email }}){% endif %}.",
    ),
    CLOSED: Template(
        title="WorkReduce order {{ data.order_number }} closed",
        body="{{ data.name }} left the open orders after {{ data.previous_status }}; WorkReduce did not say "
        "whether it was approved or canceled.",
    ),
}
PRESENTER = Presenter(name="WorkReduce", defaults=DEFAULTS)
