from __future__ import annotations

import pytest

from tests.servers import CaptureServer
from workers.exceptions import DeliveryError
from workers.sinks.apprise import AppriseSink
from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy

EVENT = Event.from_callback("wordy-main", wordy.parse(b'{"username": "Ed", "message": "ready", "job_id": 4}', None))


def sink(url: str) -> AppriseSink:
    return AppriseSink(parse_config(f"sinks:\n  a: {{type: apprise, url: '{url}'}}\n", {}).sinks["a"])  # type: ignore[arg-type]


def test_apprise_json_url_receives_title_and_body(sink_server: CaptureServer) -> None:
    sink(f"json://127.0.0.1:{sink_server.port}/notify").send(EVENT)
    (request,) = sink_server.wait_for(1)
    assert request.path == "/notify"
    assert request.json()["title"] == "Wordy job 4: new message from Ed"
    assert request.json()["message"] == "ready\nhttps://wordy.com/jobs/4/"


def test_failure_is_retryable_and_hides_the_url_secrets(sink_server: CaptureServer) -> None:
    sink_server.status = 500
    with pytest.raises(DeliveryError) as error:
        sink(f"json://user:s3cretpass@127.0.0.1:{sink_server.port}/token-abcdef123").send(EVENT)
    assert not error.value.permanent
    assert "s3cretpass" not in str(error.value) and "token-abcdef123" not in str(error.value)


def test_unknown_scheme_is_permanent() -> None:
    with pytest.raises(DeliveryError, match="does not understand") as error:
        sink("nosuchservice://x/y").send(EVENT)
    assert error.value.permanent
