"""POST the CloudEvent (structured mode), signed with Standard Webhooks headers when a secret is set."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from receiver.config import WebhookSink as WebhookSettings
from receiver.events import Event
from workers.exceptions import DeliveryError

CONTENT_TYPE = "application/cloudevents+json"
USER_AGENT = "workhooks/0.1"


class WebhookSink:
    def __init__(self, settings: WebhookSettings) -> None:
        self.url = str(settings.url)
        self.signer = Webhook(settings.secret.get_secret_value()) if settings.secret else None
        self.client = httpx.Client(timeout=settings.timeout, follow_redirects=False)

    def headers(self, event: Event, body: str) -> dict[str, str]:
        now = datetime.now(UTC)
        headers = {
            "content-type": CONTENT_TYPE,
            "user-agent": USER_AGENT,
            "webhook-id": event.id,  # lets receivers dedupe a redelivery
            "webhook-timestamp": str(int(now.timestamp())),
        }
        if self.signer is not None:
            headers["webhook-signature"] = self.signer.sign(event.id, now, body)
        return headers

    def send(self, event: Event) -> None:
        body = event.to_json()
        try:
            response = self.client.post(self.url, content=body.encode(), headers=self.headers(event, body))
        except httpx.HTTPError as error:
            raise DeliveryError(f"{type(error).__name__}: {error}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"answered {response.status_code}", response.status_code)
