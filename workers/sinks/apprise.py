"""Any Apprise URL (Teams, Discord, Telegram, PagerDuty, Pushover, ...), so users are not limited to our sinks.

Apprise reports failure as ``False`` and explains in its own log; that log is captured,
stripped of the URL's secrets, and becomes the attempt's error.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from workers.exceptions import DeliveryError
from workers.messages import render
from workhooks.config.sinks import AppriseSink as AppriseSettings
from workhooks.core.events import Event
from workhooks.core.redact import redact
from workhooks.core.templates import Template

MIN_SECRET_PART = 6
# Apprise's log is one per process, and its capture is how a failure's reason is read: one send at a
# time per worker process, so one sink's reason never carries another's lines (or its secrets).
CAPTURING = threading.Lock()


def url_secrets(url: str) -> list[str]:
    """The URL and the parts of it that may be tokens: user, password, host, path segments, query values."""
    parts = urlsplit(url)
    pieces = [url, parts.username or "", parts.password or "", parts.hostname or ""]
    pieces += [unquote(segment) for segment in parts.path.split("/")]
    pieces += [value for _, value in parse_qsl(parts.query)]
    return [piece for piece in pieces if len(piece) >= MIN_SECRET_PART]


class AppriseSink:
    def __init__(self, settings: AppriseSettings, name: str = "") -> None:
        self.name = name
        url = settings.url.get_secret_value()
        self.secrets = url_secrets(url)
        logging.getLogger("apprise").propagate = False  # its lines may carry tokens; captured below instead
        self.notifier = apprise.Apprise()
        self.understood = bool(self.notifier.add(url))

    def send(self, event: Event, template: Template | None = None) -> None:
        if not self.understood:
            raise DeliveryError("Apprise does not understand this URL (see its list of services)", permanent=True)
        message = render(event, template)
        body = message.body + (f"\n{message.link}" if message.link else "")
        with CAPTURING, apprise.LogCapture(level=logging.INFO) as captured:  # type: ignore[no-untyped-call]
            delivered = self.notifier.notify(body=body or message.title, title=message.title)
        if not delivered:
            lines = [line for line in captured.getvalue().splitlines() if "WARNING" in line or "ERROR" in line]
            detail = redact("; ".join(lines[-3:]).encode(), self.secrets).decode(errors="replace")
            raise DeliveryError(f"Apprise could not deliver: {detail or 'no reason given'}")
