from __future__ import annotations

import pytest

from tests.servers import SmtpServer, free_port
from workers.exceptions import DeliveryError
from workers.sinks.email import EmailSink
from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy

EVENT = Event.from_callback("wordy-main", wordy.parse(b'{"status": ["aer", "acr"], "job_id": 123}', None))


def sink(url: str, to: str = "team@example.com") -> EmailSink:
    """Plain SMTP (tls: none) to the test server; TLS and credentials are in test_email_tls.py."""
    text = f"sinks:\n  mail: {{type: email, url: '{url}', tls: none, from: hooks@example.com, to: [{to}]}}\n"
    config = parse_config(text, {})
    settings = config.sinks["mail"]
    return EmailSink(settings)  # type: ignore[arg-type]


def test_mail_has_a_subject_plain_and_html_parts(smtp_server: SmtpServer) -> None:
    sink(smtp_server.url).send(EVENT)
    ((envelope, mail),) = smtp_server.wait_for(1)
    assert envelope.mail_from == "hooks@example.com"
    assert envelope.rcpt_tos == ["team@example.com"]
    assert mail["Subject"] == "Wordy job 123: awaiting your review"
    assert mail["X-Workhooks-Event-Id"] == EVENT.id
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Status changed from awaiting editor response to awaiting customer response." in plain
    assert "https://wordy.com/jobs/123/" in plain
    assert "<h2>Wordy job 123: awaiting your review</h2>" in html
    assert 'href="https://wordy.com/jobs/123/"' in html


def test_refused_recipient_is_permanent(smtp_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError) as error:
        sink(smtp_server.url, "nobody@example.com").send(EVENT)
    assert error.value.permanent and error.value.status_code == 550


def test_server_down_is_retryable() -> None:
    with pytest.raises(DeliveryError) as error:
        sink(f"smtp://127.0.0.1:{free_port()}").send(EVENT)
    assert not error.value.permanent
