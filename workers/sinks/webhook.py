"""POST the CloudEvent (structured mode), signed with Standard Webhooks headers when a secret is set.

With ``secrets: [new, old]`` the ``webhook-signature`` header carries one ``v1,`` signature per
key, space-separated as Standard Webhooks specifies, so a receiver holding either key verifies.
"""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from workers.sinks.http import USER_AGENT, GuardedClient, check_response
from workhooks.config.sinks import WebhookSink as WebhookSettings
from workhooks.core.events import Event
from workhooks.core.templates import Template

CONTENT_TYPE = "application/cloudevents+json"


class WebhookSink:
    def __init__(self, settings: WebhookSettings, name: str = "") -> None:
        self.name = name
        self.url = str(settings.url)
        self.signers = [Webhook(secret) for secret in settings.signing_secrets()]
        self.extra = {name: value.get_secret_value() for name, value in settings.headers.items()}
        self.client = GuardedClient(settings.timeout, settings.allow_private)

    def headers(self, event: Event, body: str) -> dict[str, str]:
        now = datetime.now(UTC)
        headers = {
            **self.extra,
            "content-type": CONTENT_TYPE,
            "user-agent": USER_AGENT,
            "webhook-id": event.id,  # lets receivers dedupe a redelivery
            "webhook-timestamp": str(int(now.timestamp())),
        }
        if self.signers:
            headers["webhook-signature"] = " ".join(signer.sign(event.id, now, body) for signer in self.signers)
        return headers

    def send(self, event: Event, template: Template | None = None) -> None:
        body = event.to_json()
        check_response(self.client.post(self.url, body.encode(), self.headers(event, body)))
