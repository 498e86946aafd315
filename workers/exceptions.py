"""Errors raised while processing or delivering events."""

from __future__ import annotations


class DeliveryError(Exception):
    """One delivery attempt failed; RQ retries the job on the sink's schedule."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
