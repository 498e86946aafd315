"""Errors raised while processing or delivering events."""

from __future__ import annotations


class DeliveryError(Exception):
    """One delivery attempt failed.

    ``permanent``: retrying cannot help (a 4xx such as 400/401/404, a refused address, a broken
    template); the delivery goes straight to dead letters. ``retry_after``: seconds the
    destination asked us to wait (429/503 Retry-After).
    """

    def __init__(
        self, message: str, status_code: int | None = None, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent
        self.retry_after = retry_after
