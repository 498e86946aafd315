"""Mail over SMTP: plain text and HTML parts, a subject that says what happened.

``smtp://user:password@host:port`` upgrades with STARTTLS, which must succeed: a server that does
not offer it gets neither the password nor the mail (a permanent failure), so nothing in between
can downgrade the connection. ``smtps://`` speaks TLS from the start. Certificates are verified
(``ca_file`` for a private CA). ``tls: none`` is plain SMTP, never with credentials (config).
5xx answers are permanent, 4xx and network errors retry.

Every attempt of one delivery carries the same Message-ID (from the delivery id, at the sender's
domain or ``message_id_domain``), so a retried send is recognisably the same message.
"""

from __future__ import annotations

import html
import re
import smtplib
import ssl
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from workers import state as states
from workers.exceptions import DeliveryError
from workers.messages import Message, render
from workers.sinks import context
from workhooks.config.sinks import EmailSink as EmailSettings
from workhooks.core import links
from workhooks.core.events import Event
from workhooks.core.templates import Template
from workhooks.platforms import PLATFORMS
from workhooks.store import stays

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")  # what a Message-ID's left part may hold (RFC 5322)
BLANKS = re.compile(r"\s+")


def message_id(delivery: str, domain: str) -> str:
    """``<delivery@domain>``: the same for every attempt of one delivery, and unique to it."""
    return f"<{NOT_ATEXT.sub('-', delivery).strip('.')}@{domain}>"


def build(
    event: Event,
    message: Message,
    sender: str,
    recipients: list[str],
    msgid: str | None = None,
    links: list[tuple[str, str]] | None = None,
) -> EmailMessage:
    """The mail; ``links``: (label, URL) of each action that applies (action_links), after the message."""
    mail = EmailMessage()  # the default policy: RFC 5322 folding, encoded words only where needed
    mail["Subject"] = BLANKS.sub(" ", message.title).strip()  # a line break in a title would end the header
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = datetime.now(UTC)  # RFC 5322 date, +0000
    mail["Message-ID"] = msgid or message_id(event.id, sender.rsplit("@", 1)[-1])
    mail["X-Workhooks-Event-Id"] = event.id
    link = f"\n\n{message.link}" if message.link else ""
    link += "".join(f"\n{label}: {url}" for label, url in links or [])
    mail.set_content(f"{message.body}{link}\n\n-- \n{message.platform} · {event.subject} · {event.type}\n")
    paragraphs = "".join(f"<p>{html.escape(part)}</p>" for part in message.body.split("\n") if part.strip())
    button = f'<p><a href="{html.escape(message.link)}">Open</a></p>' if message.link else ""
    button += "".join(f'<p><a href="{html.escape(url)}">{html.escape(label)}</a></p>' for label, url in links or [])
    mail.add_alternative(
        f"<html><body><h2>{html.escape(message.title)}</h2>{paragraphs}{button}"
        f'<p style="color:#888">{html.escape(message.platform)} · {html.escape(event.subject)} · '
        f"{html.escape(event.type)}</p></body></html>",
        subtype="html",
    )
    return mail


class EmailSink:
    def __init__(self, settings: EmailSettings, name: str = "") -> None:
        self.name = name
        url = urlsplit(settings.url.get_secret_value())
        self.tls = url.scheme == "smtps"
        self.host = url.hostname or ""
        self.port = url.port or DEFAULT_PORTS[url.scheme]
        self.username = unquote(url.username) if url.username else None
        self.password = unquote(url.password) if url.password else ""
        self.sender = settings.from_
        self.domain = settings.message_id_domain or settings.from_.rsplit("@", 1)[-1].strip("<>")
        self.recipients = list(settings.to)
        self.timeout = settings.timeout
        self.starttls = not self.tls and settings.tls == "required"
        self.ca_file = str(settings.ca_file) if settings.ca_file else None
        self.links = settings.action_links

    def _links(self, event: Event) -> list[tuple[str, str]]:
        """A signed link for each action that applies to the subject now (the POST of its page acts)."""
        if self.links is None:
            return []
        source = context.config().sources.get(event.source)
        if source is None:
            return []
        current = states.load(context.redis_connection(), event.source, event.subject)
        stay = stays.entry(current)
        base = str(self.links.base_url).rstrip("/")
        found = []
        for action in PLATFORMS[source.platform].actions_for(current, source):
            if action.perform is None:  # a link (WorkReduce's order): the mail's own link already opens it
                continue
            token = links.make(self.links.secret.get_secret_value(), sink=self.name, source=event.source,
                               subject=event.subject, action=action.name, stay=stay, to=", ".join(self.recipients),
                               expires=time.time() + self.links.ttl)  # fmt: skip
            found.append((action.label.rstrip("…"), f"{base}/act/{token}"))
        return found

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)  # verifies the chain and the host name

    def _connect(self) -> smtplib.SMTP:
        if self.tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if not self.starttls:
            return smtp
        try:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"{self.host}:{self.port} does not offer STARTTLS, which is required: nothing was sent "
                    "(use smtps://, or tls: none for a relay without TLS and without credentials)",
                    permanent=True,
                )
            smtp.starttls(context=self._context())
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        if not self.username:
            return
        if not isinstance(smtp.sock, ssl.SSLSocket):  # settings forbid it; never send a password in clear
            raise DeliveryError("refusing to send SMTP credentials over a connection without TLS", permanent=True)
        smtp.login(self.username, self.password)

    def send(self, event: Event, template: Template | None = None) -> None:
        msgid = message_id(f"{event.id}-{self.name}" if self.name else event.id, self.domain)  # the delivery id
        mail = build(event, render(event, template), self.sender, self.recipients, msgid, self._links(event))
        try:
            with self._connect() as smtp:
                self._login(smtp)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise DeliveryError(f"recipients refused ({codes})", min(codes), permanent=min(codes) >= 500) from None
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(
                f"authentication refused ({error.smtp_code})", error.smtp_code, permanent=True
            ) from None
        except smtplib.SMTPNotSupportedError as error:
            raise DeliveryError(f"SMTP server does not support it: {error}", permanent=True) from None
        except ssl.SSLCertVerificationError as error:
            raise DeliveryError(
                f"{self.host}'s TLS certificate was not accepted ({error.verify_message}); "
                "set ca_file to trust a private CA",
                permanent=True,
            ) from None
        except smtplib.SMTPResponseException as error:
            code = error.smtp_code
            raise DeliveryError(f"SMTP server answered {code}", code, permanent=code >= 500) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP: {type(error).__name__}: {error}") from None
