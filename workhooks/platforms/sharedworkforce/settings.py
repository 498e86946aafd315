"""A Shared Workforce source in workhooks.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, model_validator

from workhooks.core.models import Key, one_or_more
from workhooks.platforms.base import CallbackSettings


class SharedWorkforceSettings(CallbackSettings):
    """Shared Workforce calls ``POST /hooks/<name>`` with ``X-API-Key`` and/or a body ``api_key``.

    ``api_keys`` lists several at once, to rotate the key without downtime.
    """

    platform: Literal["sharedworkforce"]
    api_key: Key | None = None
    api_keys: list[Key] = Field(default_factory=list)
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.sharedworkforce.com")

    def credentials(self) -> list[str]:
        """Shared Workforce authenticates its callbacks with the same key we call its API with."""
        return [value.get_secret_value() for value in [*([self.api_key] if self.api_key else []), *self.api_keys]]

    @model_validator(mode="after")
    def _has_one(self) -> SharedWorkforceSettings:
        one_or_more(self.api_key, self.api_keys, "api_key (or api_keys: [...] while rotating)")
        return self
