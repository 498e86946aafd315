from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from tests.servers import CaptureServer
from workers.exceptions import DeliveryError
from workers.sinks.webhook import WebhookSink
from workhooks.config.loading import parse_config
from workhooks.config.sinks import WebhookSink as WebhookSettings
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = Event.from_callback("wordy-main", wordy.parse(b'{"status": ["aer", "acr"], "job_id": 1}', None))


def settings(url: str, extra: str = "") -> WebhookSettings:
    text = f"sinks:\n  w: {{type: webhook, url: '{url}', secret: {SECRET}{extra}}}\n"
    result = parse_config(text, {}).sinks["w"]
    assert isinstance(result, WebhookSettings)
    return result


def test_signed_cloudevent_with_custom_headers(sink_server: CaptureServer) -> None:
    WebhookSink(settings(sink_server.url, ", allow_private: true, headers: {X-Tenant: acme}")).send(EVENT)
    (request,) = sink_server.wait_for(1)
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["host"] == f"127.0.0.1:{sink_server.port}"
    assert Webhook(SECRET).verify(request.body, request.headers)["id"] == EVENT.id


def test_private_destination_is_refused_unless_allowed(sink_server: CaptureServer) -> None:
    for url in (sink_server.url, sink_server.url.replace("127.0.0.1", "localhost")):
        with pytest.raises(DeliveryError, match="allow_private") as error:
            WebhookSink(settings(url)).send(EVENT)
        assert error.value.permanent
    assert sink_server.requests == []


def test_redirects_are_not_followed(sink_server: CaptureServer) -> None:
    sink_server.status = 302
    with pytest.raises(DeliveryError, match="redirect") as error:
        WebhookSink(settings(sink_server.url, ", allow_private: true")).send(EVENT)
    assert error.value.permanent
