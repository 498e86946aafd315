"""Slow down whoever keeps failing to authenticate: a token bucket per client IP, drained only by 401 and 404.

A client that guesses tokens, keys or source names runs out and gets 429 for everything until its
bucket refills. An authenticated request never spends a token, whatever its answer: a platform
sending a status we do not know yet gets its 400s (quarantined), not a 429 for its next valid
callback. The client is ``scope["client"]``, which receiver/clients.py resolved through trusted
proxies only. Memory is bounded (least recently seen IPs forgotten). receiver/front.py asks before
each request and spends on each answer.

With N receiver processes (`workhooks serve --workers N`) each holds 1/N of the limit: a client's
failures spread over the processes can never add up to more than the configured limit, and one
that keeps a single connection (one process) meets 1/N of it: stricter, never looser.
"""

from __future__ import annotations

import math
from collections import OrderedDict

MAX_CLIENTS = 100_000
EXEMPT = frozenset({"/healthz", "/readyz", "/openapi.json", "/metrics"})  # no credential to guess
SPENDING = frozenset({401, 404})  # failed to authenticate, or no such source: nothing vouched for the request


class FailureBuckets:
    def __init__(self, burst: int = 20, per_minute: float = 60.0, processes: int = 1) -> None:
        processes = max(1, processes)
        self.burst = max(1.0, burst / processes)
        self.rate = per_minute / 60.0 / processes
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # ip -> (tokens, at)

    def _tokens(self, ip: str, now: float) -> float:
        tokens, at = self.buckets.get(ip, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait(self, ip: str, now: float) -> int | None:
        """Seconds until ``ip`` may try again (for Retry-After), or None: it may now."""
        if ip not in self.buckets or (tokens := self._tokens(ip, now)) >= 1.0:
            return None
        return math.ceil((1.0 - tokens) / self.rate)

    def spend(self, ip: str, now: float) -> None:
        self.buckets[ip] = (self._tokens(ip, now) - 1.0, now)
        self.buckets.move_to_end(ip)
        while len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
