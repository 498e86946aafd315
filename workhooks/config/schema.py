"""The workhooks.yaml schema: sources (each platform's settings), sinks, routes, reminders, deadlines,
receiver and admin settings."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from workhooks.config.sinks import Sink
from workhooks.core.events import Phase
from workhooks.core.models import MIN_TOKEN_LENGTH, Model, Name
from workhooks.core.templates import Template
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import SourceSettings

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0

if TYPE_CHECKING:
    Source = SourceSettings
else:  # one settings model per platform in the registry, told apart by `platform:`
    Source = Annotated[
        functools.reduce(operator.or_, (platform.settings for platform in PLATFORMS.values())),
        Field(discriminator="platform"),
    ]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Match(Model):
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


class Route(Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: Match = Field(default_factory=Match)
    to: list[Name] = Field(min_length=1)
    continue_: bool = Field(default=True, alias="continue")  # false: stop at this route when it matches
    template: Template | None = None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: Any) -> Any:
    """`30s`, `15m`, `24h`, `3d`, or a number of seconds."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration (30s, 15m, 24h, 3d)")
        return float(found.group(1)) * _UNITS[found.group(2)]
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
OPEN_PHASES: tuple[Phase, ...] = ("queued", "in_progress", "awaiting_client")  # what reminders and deadlines watch


class Reminder(Model):
    """A subject in a stay (one phase and status) that matches, for longer than `after`: remind every `every`,
    at most `max` times per stay."""

    name: Name
    match: Match = Field(default_factory=Match)
    after: Duration
    every: Duration | None = None  # default: `after`
    max: int = Field(default=1, ge=1, le=1000)

    @field_validator("match")
    @classmethod
    def _open_phases_only(cls, value: Match) -> Match:
        closed = [phase for phase in value.phase or [] if phase not in OPEN_PHASES]
        if closed:
            raise ValueError(f"phase {closed[0]!r}: only open subjects wait ({', '.join(OPEN_PHASES)})")
        return value

    @property
    def interval(self) -> float:
        return self.every if self.every is not None else self.after


class Deadlines(Model):
    """Subjects with a due time (WorkReduce due_date, Wordy delivery_date): approaching `lead` before it,
    missed once it passed and the subject is not completed or canceled. Off until `deadlines:` is given."""

    lead: Duration = 24 * 3600
    approaching: bool = True
    missed: bool = True


class FailureLimit(Model):
    """Per client IP: `burst` failed requests at once, refilled at `per_minute`; 0 turns it off."""

    burst: int = Field(default=20, ge=1)
    per_minute: float = Field(default=60.0, ge=0)


class ReceiverSettings(Model):
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, le=64 * 1024 * 1024)
    # A request's line and headers: at most this many bytes, all of them within header_timeout seconds
    # of the connection opening (or of the previous answer); a body within body_timeout of its headers.
    max_header_bytes: int = Field(default=DEFAULT_MAX_HEADER_BYTES, ge=4096, le=1024 * 1024)
    header_timeout: float = Field(default=DEFAULT_HEADER_TIMEOUT, gt=0, le=300)
    body_timeout: float = Field(default=DEFAULT_BODY_TIMEOUT, gt=0, le=3600)
    spool_dir: Path = Path("var/spool")  # where callbacks wait, fsync'd, while Redis is unreachable
    failure_limit: FailureLimit = Field(default_factory=FailureLimit)
    # Peers whose X-Forwarded-For is believed (your proxy's own address); none: the peer is the client.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """`trusted_proxies: ${TRUSTED_PROXIES:-}` works too: one string, addresses split on commas."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class AdminSettings(Model):
    """The admin API and console at /admin/: off until a token is set."""

    token: SecretStr | None = None  # sent as "Authorization: Bearer <token>"

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")
        return value


class Config(Model):
    sources: dict[Name, Source] = Field(default_factory=dict)
    sinks: dict[Name, Sink] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    reminders: list[Reminder] = Field(default_factory=list)
    deadlines: Deadlines | None = None  # `deadlines: {}` turns them on with the defaults
    receiver: ReceiverSettings = Field(default_factory=ReceiverSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    _secrets: list[str] | None = PrivateAttr(default=None)

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
        for index, reminder in enumerate(self.reminders):
            for position, source in enumerate(reminder.match.source or []):
                if source not in self.sources:
                    problems.append(f"reminders.{index}.match.source.{position}: no source named {source!r}")
        for named, settings in self.sources.items():
            known = PLATFORMS[settings.platform].actions
            for action in settings.actions.rules():
                if action not in known:
                    offered = ", ".join(known) or "none"
                    problems.append(
                        f"sources.{named}.actions.{action}: {settings.platform} has no such action ({offered})"
                    )
        names = [reminder.name for reminder in self.reminders]
        twice = sorted({name for name in names if names.count(name) > 1})
        problems += [f"reminders: two rules named {name!r}" for name in twice]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def secrets(self) -> list[str]:
        """Every credential in the config — each source's, each sink's and the admin token — for redaction:
        a callback may carry another source's key or a sink's secret as well as its own (computed once)."""
        if self._secrets is None:
            found = [secret for source in self.sources.values() for secret in source.secrets()]
            found += [secret for sink in self.sinks.values() for secret in sink.secrets()]
            if self.admin.token is not None:
                found.append(self.admin.token.get_secret_value())
            self._secrets = sorted(set(found), key=len, reverse=True)  # a longer secret holding a shorter goes first
        return self._secrets
