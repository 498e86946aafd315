"""A WorkReduce source in workhooks.yaml (polled: WorkReduce has no callbacks)."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from workhooks.platforms.base import PullSettings


class WorkReduceSettings(PullSettings):
    platform: Literal["workreduce"]
    api_key: SecretStr
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.workreduce.com/v2")
    max_pages: int = Field(default=100, ge=1, le=10_000)  # 100 orders a page
    # Where a person opens an order ({number}: its OrderNumber). The API document names no web address
    # and no approve endpoint, so the "Open order" button links here; unset: no button.
    order_url: str | None = Field(default=None, pattern=r"^https?://[^\s]*\{number\}[^\s]*$")
