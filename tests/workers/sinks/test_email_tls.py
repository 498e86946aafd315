"""The email sink never sends credentials in clear: STARTTLS is required and verified, smtps works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.certs import Authority, make_ca
from tests.servers import SmtpServer
from workers.exceptions import DeliveryError
from workers.sinks.email import EmailSink
from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.core.exceptions import ConfigError
from workhooks.platforms.wordy import callback as wordy

EVENT = Event.from_callback("wordy-main", wordy.parse(b'{"status": ["aer", "acr"], "job_id": 123}', None))
USER, PASSWORD = "hooks@example.com", "smtp-password-1234"


def sink(url: str, extra: str = "") -> EmailSink:
    text = f"sinks:\n  mail: {{type: email, url: '{url}', from: hooks@example.com, to: [team@example.com]{extra}}}\n"
    return EmailSink(parse_config(text, {}).sinks["mail"])  # type: ignore[arg-type]


def with_login(url: str) -> str:
    scheme, rest = url.split("://")
    return f"{scheme}://hooks%40example.com:{PASSWORD}@{rest}"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return make_ca(tmp_path_factory.mktemp("other-ca"), "some other CA")


def serving(**options: object) -> Iterator[SmtpServer]:
    server = SmtpServer(credentials=(USER, PASSWORD), **options).start()  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture
def starttls_server(ca: Authority) -> Iterator[SmtpServer]:
    yield from serving(starttls=ca.server_context())


@pytest.fixture
def smtps_server(ca: Authority) -> Iterator[SmtpServer]:
    yield from serving(implicit_tls=ca.server_context())


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    yield from serving()


def auth_seen(server: SmtpServer) -> list[str]:
    return [command for command in server.commands if command.startswith("AUTH")]


def test_starttls_is_verified_against_ca_file_then_logs_in(starttls_server: SmtpServer, ca: Authority) -> None:
    sink(with_login(starttls_server.url), f", ca_file: '{ca.ca_file}'").send(EVENT)
    (_, mail), *_ = starttls_server.wait_for(1)
    assert mail["Subject"] == "Wordy job 123: awaiting your review"
    commands = [command.split()[0] for command in starttls_server.commands]
    assert commands.index("STARTTLS") < commands.index("AUTH") < commands.index("MAIL")


def test_smtps_is_verified_against_ca_file_then_logs_in(smtps_server: SmtpServer, ca: Authority) -> None:
    sink(with_login(smtps_server.url), f", ca_file: '{ca.ca_file}'").send(EVENT)
    assert len(smtps_server.wait_for(1)) == 1
    assert len(auth_seen(smtps_server)) == 1
    assert "STARTTLS" not in smtps_server.commands


def test_a_server_without_starttls_never_sees_auth_and_the_failure_is_permanent(plain_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as error:
        sink(with_login(plain_server.url)).send(EVENT)
    assert error.value.permanent
    assert auth_seen(plain_server) == [] and plain_server.messages == []
    assert [command.split()[0] for command in plain_server.commands] == ["EHLO"]


def test_starttls_is_required_without_credentials_too(plain_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as error:
        sink(plain_server.url).send(EVENT)
    assert error.value.permanent and plain_server.messages == []


@pytest.mark.parametrize("server_name", ["starttls_server", "smtps_server"])
def test_a_certificate_from_an_untrusted_ca_is_refused_before_auth(
    server_name: str, other_ca: Authority, request: pytest.FixtureRequest
) -> None:
    server: SmtpServer = request.getfixturevalue(server_name)
    with pytest.raises(DeliveryError, match="certificate was not accepted") as error:
        sink(with_login(server.url), f", ca_file: '{other_ca.ca_file}'").send(EVENT)
    assert error.value.permanent
    assert auth_seen(server) == [] and server.messages == []


def test_the_system_cas_do_not_trust_a_private_ca(starttls_server: SmtpServer) -> None:
    with pytest.raises(DeliveryError, match="ca_file"):
        sink(with_login(starttls_server.url)).send(EVENT)
    assert auth_seen(starttls_server) == []


def test_tls_none_is_plain_smtp_without_credentials(plain_server: SmtpServer) -> None:
    sink(plain_server.url, ", tls: none").send(EVENT)
    assert len(plain_server.wait_for(1)) == 1
    assert "STARTTLS" not in plain_server.commands and auth_seen(plain_server) == []


def test_tls_none_with_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sinks\.mail.*password in clear") as error:
        sink(with_login("smtp://127.0.0.1:2525"), ", tls: none")
    assert PASSWORD not in str(error.value)


def test_tls_none_with_smtps_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="contradicts smtps"):
        sink("smtps://127.0.0.1:2465", ", tls: none")


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        sink("smtps://127.0.0.1:2465", f", ca_file: '{tmp_path / 'nope.pem'}'")
