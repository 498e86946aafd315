"""A WorkTaps source in workhooks.yaml (polled: accounts, bearer token)."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from workhooks.platforms.base import PullSettings


class WorkTapsSettings(PullSettings):
    platform: Literal["worktaps"]
    api_token: SecretStr
    base_url: AnyHttpUrl = AnyHttpUrl("https://worktaps.com")
    page_size: int = Field(default=100, ge=1, le=1000)
