"""A Worksection source in workhooks.yaml (polled through the admin API)."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, SecretStr

from workhooks.platforms.base import PullSettings


class WorksectionSettings(PullSettings):
    platform: Literal["worksection"]
    account_url: AnyHttpUrl  # https://your-domain.worksection.com
    api_key: SecretStr
    comments: bool = False  # also read each open task's comments (one request per open task per poll)
