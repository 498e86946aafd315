"""Sink types, registered in one place: a new sink type is one module and one line here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from workers.sinks import apprise, email, log, slack, slack_app, webhook
from workhooks.core.events import Event
from workhooks.core.templates import Template


class Sink(Protocol):
    def send(self, event: Event, template: Template | None = None) -> None:
        """Deliver one event; raise DeliveryError when this attempt failed."""


SINK_TYPES: dict[str, Callable[[Any, str], Sink]] = {  # (settings, the sink's name)
    "log": log.LogSink,
    "webhook": webhook.WebhookSink,
    "slack": slack.SlackSink,
    "slack_app": slack_app.SlackAppSink,
    "email": email.EmailSink,
    "apprise": apprise.AppriseSink,
}


def build(settings: Any, name: str) -> Sink:
    return SINK_TYPES[settings.type](settings, name)
