from __future__ import annotations

import pytest

from workers.exceptions import DeliveryError
from workers.messages import render
from workhooks.core.events import Event
from workhooks.core.templates import Template
from workhooks.platforms.sharedworkforce import callback as sharedworkforce
from workhooks.platforms.wordy import callback as wordy


def wordy_event(body: bytes) -> Event:
    return Event.from_callback("wordy-main", wordy.parse(body, "application/json"))


def test_default_wordy_status_title_says_what_happened() -> None:
    message = render(wordy_event(b'{"status": ["aer", "acr"], "job_id": 123}'))
    assert message.title == "Wordy job 123: awaiting your review"
    assert message.body == "Status changed from awaiting editor response to awaiting customer response."
    assert message.link == "https://wordy.com/jobs/123/"
    assert message.platform == "Wordy"


def test_default_message_and_task_texts() -> None:
    message = render(wordy_event(b'{"username": "Editor X", "message": "Done <b>soon</b>", "job_id": 9}'))
    assert (message.title, message.body) == ("Wordy job 9: new message from Editor X", "Done <b>soon</b>")
    task = Event.from_callback(
        "swf",
        sharedworkforce.parse(
            b'{"task": {"id": 5, "title": "Tag", "responses": [{"answer": ["a", "b"], "username": "w1"},'
            b' {"answer": "c"}]}}',
            None,
        ),
    )
    rendered = render(task)
    assert rendered.title == "Shared Workforce task 5 (Tag): 2 responses"
    assert rendered.body == "- a, b (w1)\n- c"
    assert rendered.link == "https://sharedworkforce.com/tasks/5"


def test_route_template_overrides_title_and_keeps_default_body() -> None:
    event = wordy_event(b'{"status": ["acr", "c"], "job_id": 7}')
    message = render(event, Template(title="[{{ phase }}] job {{ data.job_id }} is {{ data.status_label | upper }}"))
    assert message.title == "[completed] job 7 is COMPLETE"
    assert message.body.startswith("Status changed from")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",  # sandbox escape attempt
        "{{ data.no_such_field }}",  # StrictUndefined: a typo is an error, not an empty message
    ],
)
def test_template_failures_are_permanent_delivery_errors(source: str) -> None:
    with pytest.raises(DeliveryError) as error:
        render(wordy_event(b'{"status": ["acr", "c"], "job_id": 7}'), Template(title=source))
    assert error.value.permanent


def test_default_texts_for_polled_events() -> None:
    from workhooks.platforms.workreduce import poller as workreduce
    from workhooks.platforms.worktaps import poller as worktaps

    (delivered,) = workreduce.changes(
        {"order_number": "00007848", "status": "QA Complete"},
        {"order_number": "00007848", "name": "QA Screenshot", "status": "Delivered", "requester_email": "g@x.com"},
    )
    message = render(Event.from_callback("wr", delivered))
    assert message.title == "WorkReduce order 00007848 is Delivered, please approve"
    assert message.body == "QA Screenshot: QA Complete → Delivered (requested by g@x.com)."
    (updated,) = worktaps.changes(
        {"id": 1, "firstName": "A", "jobTitle": "x"}, {"id": 1, "firstName": "A", "jobTitle": "y"}
    )
    assert render(Event.from_callback("wt", updated)).body == "jobTitle: x → y"
