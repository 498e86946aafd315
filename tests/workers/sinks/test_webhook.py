from __future__ import annotations

import base64

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.servers import CaptureServer
from workers.exceptions import DeliveryError
from workers.sinks.webhook import WebhookSink
from workhooks.config.loading import parse_config
from workhooks.config.sinks import WebhookSink as WebhookSettings
from workhooks.core.events import Event
from workhooks.core.exceptions import ConfigError
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


NEW = "whsec_" + base64.b64encode(b"the-new-key-0123456789abcdefghij").decode()


def test_rotation_signs_with_every_secret_and_each_alone_verifies(sink_server: CaptureServer) -> None:
    rotated = parse_config(
        f"sinks:\n  w: {{type: webhook, url: '{sink_server.url}', allow_private: true, secrets: [{NEW}, {SECRET}]}}\n",
        {},
    ).sinks["w"]
    WebhookSink(rotated).send(EVENT)  # type: ignore[arg-type]
    (request,) = sink_server.wait_for(1)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(signature.startswith("v1,") for signature in signatures)
    for secret in (NEW, SECRET):
        assert Webhook(secret).verify(request.body, request.headers)["id"] == EVENT.id
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"some-other-key-0123456789").decode()).verify(
            request.body, request.headers
        )


def test_every_rotated_secret_is_redacted_like_secret() -> None:
    config = parse_config(
        f"sinks:\n  w: {{type: webhook, url: 'https://erp.example/x', secrets: [{NEW}, {SECRET}]}}\n", {}
    )
    assert {NEW, SECRET} <= set(config.sinks["w"].secrets()) and {NEW, SECRET} <= set(config.secrets())
    assert NEW not in config.sinks["w"].where() and "2 secrets" in config.sinks["w"].where()


@pytest.mark.parametrize(
    ("key", "shown"),
    [("secret: whsec_not*base64!", r"sinks\.w\.(webhook\.)?secret: .*not base64"),
     ("secrets: [" + SECRET + ", whsec_%%%%]", r"sinks\.w\.(webhook\.)?secrets\.1: .*not base64"),
     ("secret: whsec_", r"sinks\.w\.(webhook\.)?secret: .*empty"),
     ("secret: " + SECRET + ", secrets: [" + SECRET + "]", r"sinks\.w(\.webhook)?: .*secret or secrets, not both")],
)  # fmt: skip
def test_a_secret_that_is_not_whsec_and_base64_is_a_config_error_with_its_key_path(key: str, shown: str) -> None:
    with pytest.raises(ConfigError, match=shown) as error:
        parse_config(f"sinks:\n  w: {{type: webhook, url: 'https://erp.example/x', {key}}}\n", {})
    assert "not*base64" not in str(error.value) and "%%%%" not in str(error.value)
