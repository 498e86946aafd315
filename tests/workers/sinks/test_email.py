from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.servers import SmtpServer, free_port
from workers.exceptions import DeliveryError
from workers.messages import Message
from workers.sinks.email import EmailSink, build
from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.platforms.wordy import callback as wordy

EVENT = Event.from_callback("wordy-main", wordy.parse(b'{"status": ["aer", "acr"], "job_id": 123}', None))


def sink(url: str, to: str = "team@example.com", extra: str = "") -> EmailSink:
    """Plain SMTP (tls: none) to the test server; TLS and credentials are in test_email_tls.py."""
    text = f"sinks:\n  mail: {{type: email, url: '{url}', tls: none, from: hooks@example.com, to: [{to}]{extra}}}\n"
    config = parse_config(text, {})
    settings = config.sinks["mail"]
    return EmailSink(settings, "mail")  # type: ignore[arg-type]


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


def test_every_attempt_of_one_delivery_has_the_same_message_id_at_the_senders_domain(smtp_server: SmtpServer) -> None:
    accepted, other = replace(EVENT, id="evt_" + "a" * 32), replace(EVENT, id="evt_" + "b" * 32)
    sink(smtp_server.url).send(accepted)
    sink(smtp_server.url).send(accepted)  # a retry: another attempt of the same delivery
    sink(smtp_server.url).send(other)
    ids = [mail["Message-ID"] for _, mail in smtp_server.wait_for(3)]
    assert ids[0] == ids[1] == f"<{accepted.id}-mail@example.com>" and ids[2] == f"<{other.id}-mail@example.com>"


def test_a_configured_message_id_domain_is_used(smtp_server: SmtpServer) -> None:
    sink(smtp_server.url, extra=", message_id_domain: hooks.example.org").send(replace(EVENT, id="evt_c"))
    ((_, mail),) = smtp_server.wait_for(1)
    assert mail["Message-ID"] == "<evt_c-mail@hooks.example.org>"


def test_date_is_an_rfc_5322_date_of_now(smtp_server: SmtpServer) -> None:
    sink(smtp_server.url).send(EVENT)
    ((_, mail),) = smtp_server.wait_for(1)
    date = mail["Date"].datetime
    assert date.utcoffset() == timedelta(0) and str(mail["Date"]).endswith("+0000")
    assert abs(datetime.now(UTC) - date) < timedelta(minutes=1)


def test_a_long_subject_is_folded_without_a_leading_space_and_reads_back_the_same(smtp_server: SmtpServer) -> None:
    title = "Wordy job 123: " + "a review is waiting for you, Zoë " * 6 + "now"
    mail = build(EVENT, Message(title=title, body="b", link=None, platform="Wordy"), "hooks@example.com", ["t@x.org"])
    raw = mail.as_bytes()
    assert raw.startswith(b"Subject: Wordy job 123: ") and all(len(line) <= 78 for line in raw.splitlines()[:8])
    with_break = build(
        EVENT, Message(title="two\nlines", body="b", link=None, platform="W"), "h@example.com", ["t@x.org"]
    )
    assert with_break["Subject"] == "two lines"
    sink(smtp_server.url).send(EVENT)
    ((_, received),) = smtp_server.wait_for(1)
    assert received["Subject"] == "Wordy job 123: awaiting your review"
