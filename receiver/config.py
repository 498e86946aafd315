"""The workhooks.yaml schema, loaded and validated once per process.

``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment
after YAML parsing, so a variable's value can never change the document's structure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from receiver.events import Phase
from receiver.exceptions import ConfigError

DEFAULT_CONFIG_PATH = "workhooks.yaml"
EXAMPLE_CONFIG_PATH = Path(__file__).resolve().parent.parent / "deploy" / "workhooks.example.yaml"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MIN_TOKEN_LENGTH = 16

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _one_or_more(single: SecretStr | None, many: list[SecretStr], names: str) -> None:
    if single is None and not many:
        raise ValueError(f"set {names}")


class WordySource(_Model):
    """Wordy calls ``POST /hooks/<name>/<token>``: the token in the path is the credential.

    ``tokens`` lists several at once, to rotate without downtime: add the new one, move
    Wordy's callback_url over, then remove the old one.
    """

    platform: Literal["wordy"]
    token: SecretStr | None = None
    tokens: list[SecretStr] = Field(default_factory=list)
    api_key: SecretStr | None = None  # Wordy API key: enables confirm and reconcile_interval
    base_url: AnyHttpUrl = AnyHttpUrl("https://wordy.com/api/1.0")  # sandbox: https://sandbox.wordy.com/api/1.0
    confirm: bool = False  # check each status callback against GET /job/{id}/ before trusting it
    reconcile_interval: int | None = Field(default=None, ge=1, le=24 * 3600)
    timeout: float = Field(default=15.0, gt=0, le=120)

    @field_validator("token", "tokens")
    @classmethod
    def _long_enough(cls, value: SecretStr | list[SecretStr] | None) -> SecretStr | list[SecretStr] | None:
        for item in value if isinstance(value, list) else [value] if value else []:
            if len(item.get_secret_value()) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"must be at least {MIN_TOKEN_LENGTH} characters "
                    '(python3 -c "import secrets; print(secrets.token_urlsafe(24))")'
                )
        return value

    @model_validator(mode="after")
    def _has_one(self) -> WordySource:
        _one_or_more(self.token, self.tokens, "token (or tokens: [...] while rotating)")
        if (self.confirm or self.reconcile_interval) and self.api_key is None:
            raise ValueError("confirm and reconcile_interval need api_key (the Wordy API key)")
        return self

    def secrets(self) -> list[str]:
        found = [item.get_secret_value() for item in ([self.token] if self.token else []) + self.tokens]
        return found + ([self.api_key.get_secret_value()] if self.api_key else [])


class SharedWorkforceSource(_Model):
    """Shared Workforce calls ``POST /hooks/<name>`` with ``X-API-Key`` and/or a body ``api_key``.

    ``api_keys`` lists several at once, to rotate the key without downtime.
    """

    platform: Literal["sharedworkforce"]
    api_key: SecretStr | None = None
    api_keys: list[SecretStr] = Field(default_factory=list)
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.sharedworkforce.com")
    reconcile_interval: int | None = Field(default=None, ge=1, le=24 * 3600)  # poll for missed callbacks
    timeout: float = Field(default=15.0, gt=0, le=120)

    @field_validator("api_key", "api_keys")
    @classmethod
    def _not_empty(cls, value: SecretStr | list[SecretStr] | None) -> SecretStr | list[SecretStr] | None:
        for item in value if isinstance(value, list) else [value] if value else []:
            if not item.get_secret_value().strip():
                raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _has_one(self) -> SharedWorkforceSource:
        _one_or_more(self.api_key, self.api_keys, "api_key (or api_keys: [...] while rotating)")
        return self

    def secrets(self) -> list[str]:
        return [item.get_secret_value() for item in ([self.api_key] if self.api_key else []) + self.api_keys]


class _PullSource(_Model):
    """A platform without callbacks: workers poll its API every `poll_interval` seconds."""

    poll_interval: int = Field(default=60, ge=1, le=24 * 3600)
    announce_existing: bool = False  # first poll: announce what exists already, or only record it
    timeout: float = Field(default=15.0, gt=0, le=120)


class WorkReduceSource(_PullSource):
    platform: Literal["workreduce"]
    api_key: SecretStr
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.workreduce.com/v2")
    max_pages: int = Field(default=100, ge=1, le=10_000)  # 100 orders a page

    def secrets(self) -> list[str]:
        return [self.api_key.get_secret_value()]


class WorksectionSource(_PullSource):
    platform: Literal["worksection"]
    account_url: AnyHttpUrl  # https://your-domain.worksection.com
    api_key: SecretStr
    comments: bool = False  # also read each open task's comments (one request per open task per poll)

    def secrets(self) -> list[str]:
        return [self.api_key.get_secret_value()]


class WorkTapsSource(_PullSource):
    platform: Literal["worktaps"]
    api_token: SecretStr
    base_url: AnyHttpUrl = AnyHttpUrl("https://worktaps.com")
    page_size: int = Field(default=100, ge=1, le=1000)

    def secrets(self) -> list[str]:
        return [self.api_token.get_secret_value()]


def poll_interval_of(source: object) -> int | None:
    """Seconds between polls of a source: a pull source's poll_interval, a callback source's reconcile_interval."""
    if isinstance(source, (WorkReduceSource, WorksectionSource, WorkTapsSource)):
        return source.poll_interval
    interval = getattr(source, "reconcile_interval", None)
    return interval if isinstance(interval, int) else None


Source = Annotated[
    WordySource | SharedWorkforceSource | WorkReduceSource | WorksectionSource | WorkTapsSource,
    Field(discriminator="platform"),
]


DEFAULT_RETRY_INTERVALS = (10, 60, 300, 1800, 7200, 21600)


class _Sink(_Model):
    retry_intervals: list[Annotated[int, Field(gt=0, le=7 * 24 * 3600)]] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_INTERVALS), max_length=50
    )  # seconds before each retry; an empty list means one attempt


class _HTTPSink(_Sink):
    allow_private: bool = False  # opt in to loopback/private/link-local destinations
    timeout: float = Field(default=10.0, gt=0, le=120)


def _url_with_scheme(value: SecretStr, schemes: tuple[str, ...]) -> SecretStr:
    parsed = urlsplit(value.get_secret_value())
    if parsed.scheme not in schemes or not parsed.hostname:
        raise ValueError(f"must be a {' or '.join(schemes)} URL with a host")
    return value


class WebhookSink(_HTTPSink):
    type: Literal["webhook"]
    url: AnyHttpUrl
    secret: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # values may be credentials

    @field_validator("secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must be a Standard Webhooks secret starting with 'whsec_'")
        return value


class SlackSink(_HTTPSink):
    """A Slack incoming-webhook URL; the URL itself is the credential."""

    type: Literal["slack"]
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        return _url_with_scheme(value, ("https", "http"))


class EmailSink(_Sink):
    """SMTP: smtp://user:password@host:587 (STARTTLS when offered) or smtps://...:465 (TLS)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    url: SecretStr
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    timeout: float = Field(default=30.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _smtp_url(cls, value: SecretStr) -> SecretStr:
        return _url_with_scheme(value, ("smtp", "smtps"))


class AppriseSink(_Sink):
    """Any Apprise URL (Teams, Discord, Telegram, PagerDuty, ...); it usually holds a token."""

    type: Literal["apprise"]
    url: SecretStr


class LogSink(_Sink):
    type: Literal["log"]
    path: Path | None = None


Sink = Annotated[WebhookSink | SlackSink | EmailSink | AppriseSink | LogSink, Field(discriminator="type")]
HUMAN_SINK_TYPES = ("slack", "email", "apprise")


class Match(_Model):
    """Every key given must hold; a list means any of its values."""

    source: list[str] | None = None
    type: list[str] | None = None
    subject: list[str] | None = None
    phase: list[Phase] | None = None
    data: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_data_keys(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        plain: dict[str, Any] = {}
        data: dict[str, list[Any]] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("data."):
                data[key[len("data.") :]] = item if isinstance(item, list) else [item]
            else:
                plain[key] = _one_or_many(item)
        if data:
            plain["data"] = data
        return plain


class Template(_Model):
    """Sandboxed Jinja2 for the title/body of human-facing sinks; unset parts use the defaults."""

    title: str | None = None
    body: str | None = None

    @field_validator("title", "body")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            from jinja2 import TemplateSyntaxError
            from jinja2.sandbox import SandboxedEnvironment

            try:
                SandboxedEnvironment().parse(value)
            except TemplateSyntaxError as error:
                raise ValueError(f"template error on line {error.lineno}: {error.message}") from None
        return value


class Route(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: Match = Field(default_factory=Match)
    to: list[Name] = Field(min_length=1)
    continue_: bool = Field(default=True, alias="continue")  # false: stop at this route when it matches
    template: Template | None = None


class FailureLimit(_Model):
    """Per client IP: `burst` failed requests at once, refilled at `per_minute`; 0 turns it off."""

    burst: int = Field(default=20, ge=1)
    per_minute: float = Field(default=60.0, ge=0)


class ReceiverSettings(_Model):
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, le=64 * 1024 * 1024)
    spool_dir: Path = Path("var/spool")  # where callbacks wait, fsync'd, while Redis is unreachable
    failure_limit: FailureLimit = Field(default_factory=FailureLimit)


class AdminSettings(_Model):
    """The admin API and console at /admin/: off until a token is set."""

    token: SecretStr | None = None  # sent as "Authorization: Bearer <token>"

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")
        return value


class Config(_Model):
    sources: dict[Name, Source] = Field(default_factory=dict)
    sinks: dict[Name, Sink] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    receiver: ReceiverSettings = Field(default_factory=ReceiverSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)

    @model_validator(mode="after")
    def _references_exist(self) -> Config:
        problems = []
        for index, route in enumerate(self.routes):
            for position, sink in enumerate(route.to):
                if sink not in self.sinks:
                    problems.append(f"routes.{index}.to.{position}: no sink named {sink!r}")
            for position, source in enumerate(route.match.source or []):
                if source not in self.sources:
                    problems.append(f"routes.{index}.match.source.{position}: no source named {source!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def secrets(self) -> list[str]:
        """Every credential in the config, for redaction."""
        found = [secret for source in self.sources.values() for secret in source.secrets()]
        for sink in self.sinks.values():
            if isinstance(sink, WebhookSink):
                found += [value.get_secret_value() for value in sink.headers.values()]
                if sink.secret is not None:
                    found.append(sink.secret.get_secret_value())
            elif isinstance(sink, (SlackSink, AppriseSink, EmailSink)):
                found.append(sink.url.get_secret_value())
                password = urlsplit(sink.url.get_secret_value()).password
                if password:
                    found.append(password)
        return found


def _substitute(value: Any, path: str, env: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: _substitute(item, f"{path}.{key}" if path else str(key), env, problems) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_substitute(item, f"{path}.{index}", env, problems) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    return _VAR.sub(replace, value)


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        lines.append(f"{location or '(top level)'}: {item['msg']}")
    return "\n".join(lines)


def parse_config(text: str, env: Mapping[str, str] | None = None, origin: str = "workhooks.yaml") -> Config:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping with sources, sinks and routes")
    problems: list[str] = []
    document = _substitute(document, "", os.environ if env is None else env, problems)
    if problems:
        raise ConfigError(f"{origin}:\n" + "\n".join(problems))
    try:
        return Config.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{origin}:\n{_format_errors(exc)}") from None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """WORKHOOKS_CONFIG, else ./workhooks.yaml, else the example shipped in deploy/."""
    env = os.environ if env is None else env
    if env.get("WORKHOOKS_CONFIG"):
        return Path(env["WORKHOOKS_CONFIG"])
    if Path(DEFAULT_CONFIG_PATH).exists():
        return Path(DEFAULT_CONFIG_PATH)
    return EXAMPLE_CONFIG_PATH


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path) if path is not None else config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(text, env, origin=str(path))
