"""A Worksection source in workhooks.yaml (polled through the admin API)."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from workhooks.platforms.base import PullSettings


class WorksectionSettings(PullSettings):
    platform: Literal["worksection"]
    account_url: AnyHttpUrl  # https://your-domain.worksection.com
    api_key: SecretStr
    comments: bool = False  # also read open tasks' comments: one request per task, comments_per_poll at most
    comments_per_poll: int = Field(default=50, ge=1, le=10_000)  # a large account's tasks take turns
