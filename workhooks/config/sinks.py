"""The settings of each sink type: validation, the secrets it holds, how it is shown, whether people read it.

Delivery (workers/sinks/<type>.py) builds on these; what differs between sink types is said
here, once, rather than in isinstance chains elsewhere.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)

from workhooks.core.models import Model

DEFAULT_RETRY_INTERVALS = (10, 60, 300, 1800, 7200, 21600)
SLACK_HOST = "hooks.slack.com"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a credential)
HOSTNAME = r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$"


class RateLimit(Model):
    """At most ``per_second`` (or ``per_minute``) attempts, ``burst`` of them back to back, across all workers."""

    per_second: float | None = Field(default=None, gt=0, le=100_000)
    per_minute: float | None = Field(default=None, gt=0, le=6_000_000)
    burst: int = Field(default=1, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_rate(self) -> RateLimit:
        if (self.per_second is None) == (self.per_minute is None):
            raise ValueError("give per_second or per_minute (one of them)")
        return self

    def interval_ms(self) -> float:
        """The time between two attempts at the steady rate (GCRA's emission interval)."""
        return 1000 / self.per_second if self.per_second is not None else 60_000 / (self.per_minute or 1)


class Breaker(Model):
    """Open after ``failures`` retryable failures in a row; probe after ``probe_after`` s, doubling to ``probe_max``."""

    failures: int = Field(default=5, ge=1, le=10_000)
    probe_after: float = Field(default=5.0, gt=0, le=3600)
    probe_max: float = Field(default=300.0, gt=0, le=24 * 3600)


class SinkSettings(Model):
    type: str
    retry_intervals: list[Annotated[int, Field(gt=0, le=7 * 24 * 3600)]] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_INTERVALS), max_length=50
    )  # seconds before each retry; an empty list means one attempt
    # deliveries in flight to this sink at once, across every worker (default: the type's)
    max_in_flight: int | None = Field(default=None, ge=1, le=4096)
    rate_limit: RateLimit | None = None  # default: the type's (Slack's documented 1/s), else none
    breaker: Breaker = Field(default_factory=Breaker)

    for_people: ClassVar[bool] = False  # what it delivers is read by a person: a title and a body
    default_in_flight: ClassVar[int] = 16
    default_rate: ClassVar[RateLimit | None] = None

    def in_flight(self) -> int:
        return self.max_in_flight or self.default_in_flight

    def rate(self) -> RateLimit | None:
        return self.rate_limit or self.default_rate

    def secrets(self) -> list[str]:
        """Every credential in this sink's settings, for redaction."""
        return []

    def where(self) -> str:
        """Where it delivers, without its secrets (`workhooks check`)."""
        return self.type

    def attempt_timeout(self) -> float | None:
        """How long one attempt may take, when the sink bounds it."""
        return None


def _url_with_scheme(value: SecretStr, schemes: tuple[str, ...]) -> SecretStr:
    parsed = urlsplit(value.get_secret_value())
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ValueError(f"must be a {' or '.join(schemes)} URL with a host")
    return value


class _SecretURLSink(SinkSettings):
    """A sink whose URL is (or holds) the credential."""

    url: SecretStr

    def secrets(self) -> list[str]:
        url = self.url.get_secret_value()
        password = urlsplit(url).password
        return [url, password] if password else [url]

    def where(self) -> str:
        url = urlsplit(self.url.get_secret_value())
        return f"{url.scheme}://{url.hostname or ''}/… (URL hidden)"


class _HTTPSink(SinkSettings):
    allow_private: bool = False  # opt in to loopback/private/link-local destinations
    timeout: float = Field(default=10.0, gt=0, le=120)

    def attempt_timeout(self) -> float | None:
        return self.timeout


def _standard_webhooks_secret(value: SecretStr) -> SecretStr:
    """whsec_ and a non-empty base64 key, checked here so a worker never meets a key it cannot decode."""
    text = value.get_secret_value()
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"must be a Standard Webhooks secret starting with '{SECRET_PREFIX}'")
    key = text.removeprefix(SECRET_PREFIX)
    try:
        decoded = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be '{SECRET_PREFIX}' followed by a base64 key; what follows is not base64") from None
    if not decoded:
        raise ValueError(f"must be '{SECRET_PREFIX}' followed by a base64 key; the key is empty")
    return value


SigningSecret = Annotated[SecretStr, AfterValidator(_standard_webhooks_secret)]


class WebhookSink(_HTTPSink):
    type: Literal["webhook"]
    url: AnyHttpUrl
    default_in_flight: ClassVar[int] = 64
    secret: SigningSecret | None = None
    # `secrets: [new, old]`: one signature per key, so a receiver can move to the new key on its own time
    rotation: list[SigningSecret] = Field(default_factory=list, alias="secrets", max_length=10)
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # values may be credentials

    @model_validator(mode="after")
    def _secret_or_secrets(self) -> WebhookSink:
        if self.secret is not None and self.rotation:
            raise ValueError("give secret or secrets, not both (secrets: [new, old] signs with each)")
        return self

    def signing_secrets(self) -> list[str]:
        """The keys to sign with, newest first: one `v1,` signature each."""
        keys = [self.secret] if self.secret is not None else self.rotation
        return [key.get_secret_value() for key in keys]

    def secrets(self) -> list[str]:
        return [value.get_secret_value() for value in self.headers.values()] + self.signing_secrets()

    def where(self) -> str:
        keys = len(self.signing_secrets())
        signed = "" if not keys else "  (signed)" if keys == 1 else f"  (signed with {keys} secrets)"
        return f"{self.url}{signed}"


class SlackSink(_HTTPSink, _SecretURLSink):
    """A Slack incoming-webhook URL; the URL itself is the credential, so it goes to Slack only unless told."""

    type: Literal["slack"]
    allow_any_host: bool = False  # a Slack-compatible endpoint elsewhere (Mattermost, a proxy, a test server)
    for_people: ClassVar[bool] = True
    # one message at a time, at the 1 per second per webhook Slack documents (past it: 429)
    default_in_flight: ClassVar[int] = 1
    default_rate: ClassVar[RateLimit | None] = RateLimit(per_second=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        return _url_with_scheme(value, ("https", "http"))

    @model_validator(mode="after")
    def _slack_host(self) -> SlackSink:
        url = urlsplit(self.url.get_secret_value())
        if self.allow_any_host:
            return self
        if url.scheme != "https" or url.hostname != SLACK_HOST or url.port not in (None, 443) or url.username:
            raise ValueError(
                f"url: must start with https://{SLACK_HOST}/ (set allow_any_host: true for another host); "
                f"got {url.scheme}://{url.hostname or ''}/…"
            )
        return self


SLACK_API = "https://slack.com/api/"
SLACK_ACTION_PREFIX = "workhooks."  # the action_id of a slack_app sink's buttons: workhooks.<action>
GENERATE = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


class SlackAppSink(_HTTPSink):
    """A Slack app's bot (chat:write): one thread per subject, its parent kept current, with action buttons.

    ``signing_secret`` verifies the app's interactions (POST /slack/actions). ``base_url``: Slack's Web API
    (another Slack cloud, or an emulator on 127.0.0.1 with ``allow_private: true``).
    """

    type: Literal["slack_app"]
    bot_token: SecretStr
    signing_secret: SecretStr
    channel: str = Field(pattern=r"^[A-Z0-9]{2,32}$")  # the channel's id (C0456EFGH), not its name
    base_url: AnyHttpUrl = AnyHttpUrl(SLACK_API)
    # The app's own workspace (T…; on Enterprise Grid the org, E…): a listed channel admits only its members.
    # Default: what auth.test says of bot_token, asked once.
    team_id: str | None = Field(default=None, pattern=r"^[TE][A-Z0-9]{2,31}$")
    for_people: ClassVar[bool] = True
    # one message at a time per channel: chat.postMessage allows about 1 per second per channel
    default_in_flight: ClassVar[int] = 1
    default_rate: ClassVar[RateLimit | None] = RateLimit(per_second=1)

    @field_validator("bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token (xoxb-…, the app's Bot User OAuth Token)")
        return value

    @field_validator("signing_secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be the app's Signing Secret (Basic Information, App Credentials)")
        return value

    def secrets(self) -> list[str]:
        return [self.bot_token.get_secret_value(), self.signing_secret.get_secret_value()]

    def where(self) -> str:
        return f"{self.base_url} channel {self.channel} (bot token hidden)"


class ActionLinks(Model):
    """Links in each email to the actions that apply, opened at ``base_url``/act/… (the receiver's public
    address): a confirmation page, the action on its POST. Signed with ``secret``, single use, expiring."""

    base_url: AnyHttpUrl
    secret: SecretStr
    ttl: float = Field(default=72 * 3600, gt=0, le=30 * 24 * 3600)  # seconds

    @field_validator("secret")
    @classmethod
    def _long(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError(f"must be at least 32 characters ({GENERATE})")
        return value


class EmailSink(_SecretURLSink):
    """SMTP: smtp://user:password@host:587 (STARTTLS, which must succeed) or smtps://...:465 (TLS from the start).

    The server's certificate is verified (against ``ca_file`` when set, else the system's CAs).
    ``tls: none`` is plain SMTP, for a relay on the same host, and never with credentials.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    timeout: float = Field(default=30.0, gt=0, le=300)
    tls: Literal["required", "none"] = "required"
    ca_file: FilePath | None = None  # PEM bundle of the CAs to trust instead of the system's (a private relay)
    # the domain of each Message-ID (default: the From address's)
    message_id_domain: str | None = Field(default=None, pattern=HOSTNAME)
    action_links: ActionLinks | None = None  # off unless set
    for_people: ClassVar[bool] = True
    default_in_flight: ClassVar[int] = 4  # SMTP connections at once: relays limit them per client

    @field_validator("url")
    @classmethod
    def _smtp_url(cls, value: SecretStr) -> SecretStr:
        return _url_with_scheme(value, ("smtp", "smtps"))

    @model_validator(mode="after")
    def _no_credentials_in_clear(self) -> EmailSink:
        url = urlsplit(self.url.get_secret_value())
        if self.tls == "none" and url.scheme == "smtps":
            raise ValueError("tls: none contradicts smtps:// (TLS from the start): use smtp:// for plain SMTP")
        if self.tls == "none" and (url.username or url.password):
            raise ValueError(
                "tls: none would send the SMTP password in clear: use smtps://, or smtp:// with STARTTLS "
                "(the default, tls: required)"
            )
        return self

    def where(self) -> str:
        url = urlsplit(self.url.get_secret_value())
        return f"{url.scheme}://{url.hostname}:{url.port or ''} -> {', '.join(self.to)}"

    def secrets(self) -> list[str]:
        links = [self.action_links.secret.get_secret_value()] if self.action_links is not None else []
        return super().secrets() + links

    def attempt_timeout(self) -> float | None:
        return self.timeout


class AppriseSink(_SecretURLSink):
    """Any Apprise URL (Teams, Discord, Telegram, PagerDuty, ...); it usually holds a token."""

    type: Literal["apprise"]
    for_people: ClassVar[bool] = True
    default_in_flight: ClassVar[int] = 1  # its failure reasons are read from a process-wide log capture


class LogSink(SinkSettings):
    type: Literal["log"]
    path: Path | None = None

    def where(self) -> str:
        return str(self.path or "stdout")


Sink = Annotated[
    WebhookSink | SlackSink | SlackAppSink | EmailSink | AppriseSink | LogSink, Field(discriminator="type")
]
