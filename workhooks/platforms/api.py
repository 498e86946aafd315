"""HTTP for pollers: each platform's errors read as documented, and short waits done in place.

401/403 (or the platform's own "unauthorized" body) is an AuthError: the poller backs off and
the log says to check the key. 429 waits for Retry-After when it is short, else backs off.
5xx and network errors are retried a few times with backoff, then back off until the next poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from workhooks.core.headers import retry_after

MAX_IN_PLACE_WAIT = 5.0
ATTEMPTS = 4


class PollError(Exception):
    """This poll failed; ``backoff`` seconds before the next one (None: the usual interval)."""

    def __init__(self, message: str, backoff: float | None = None) -> None:
        super().__init__(message)
        self.backoff = backoff


class PartialPollError(PollError):
    """A poll that failed part-way: ``items`` were read and are applied; the error backs off as usual.
    ``complete``: the listing itself was whole (only extra reads, such as comments, stopped)."""

    def __init__(self, error: PollError, items: list[dict[str, Any]], complete: bool) -> None:
        super().__init__(str(error), error.backoff)
        self.items, self.complete = items, complete


class AuthError(PollError):
    """The platform refused our credentials: nothing will work until the key is fixed."""


class RateLimitedError(PollError):
    pass


def _brief(response: httpx.Response) -> str:
    return response.text[:200].replace("\n", " ")


class ApiClient:
    def __init__(self, timeout: float, headers: dict[str, str] | None = None, auth: Any = None) -> None:
        self.client = httpx.Client(timeout=timeout, headers=headers or {}, auth=auth, follow_redirects=False)
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def get_json(
        self,
        url: str,
        params: dict[str, Any] | None = None,
        explain: Callable[[httpx.Response], None] | None = None,
        absent: tuple[int, ...] = (),
    ) -> Any:
        """GET and decode JSON; ``explain`` may raise a PollError for a platform's own error bodies.
        A status in ``absent`` (404, 410: the thing is not there) answers None instead of failing."""
        delay = 0.5
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self.requests += 1
                response = self.client.get(url, params=params)
            except httpx.HTTPError as error:
                failure: PollError = PollError(f"{type(error).__name__}: {error}")
            else:
                if response.status_code in absent:
                    return None
                if explain is not None:
                    explain(response)
                if response.status_code in (401, 403):
                    raise AuthError(f"answered {response.status_code}: {_brief(response)}")
                if response.status_code == 429:
                    wait = retry_after(response.headers.get("retry-after"))
                    if wait is not None and wait > MAX_IN_PLACE_WAIT:
                        raise RateLimitedError(f"rate limited for {wait:.0f} s", backoff=wait)
                    failure, delay = RateLimitedError("rate limited", backoff=wait), wait if wait is not None else delay
                elif response.status_code >= 500:
                    failure = PollError(f"answered {response.status_code}")
                elif response.status_code >= 400:
                    raise PollError(f"answered {response.status_code}: {_brief(response)}")
                else:
                    try:
                        return response.json()
                    except ValueError:
                        raise PollError(f"answered {response.status_code} with a body that is not JSON") from None
            if attempt < ATTEMPTS:
                time.sleep(min(delay, MAX_IN_PLACE_WAIT))
                delay = min(delay * 2, MAX_IN_PLACE_WAIT)
        raise failure


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the platform answered an action: ``ok``, its HTTP status, and a short reason a person can read.
    ``unknown``: no answer came (a timeout, a reset), so whether it was applied is not known."""

    ok: bool
    status: int | None
    detail: str
    unknown: bool = False


def act(client: httpx.Client, method: str, url: str, **request: Any) -> httpx.Response | str:
    """One request an action makes, never repeated here (a confirm sent twice may be applied twice):
    the response, or why none came."""
    try:
        return client.request(method, url, **request)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: no answer"


def outcome(answer: httpx.Response | str, detail: Callable[[httpx.Response], str | None] | None = None) -> Outcome:
    """The platform's answer as an Outcome: 2xx is done; a 4xx says why in the platform's words (nothing
    was applied); a 5xx or 408 — the platform, or a proxy before it, may have applied it first — is unknown."""
    if isinstance(answer, str):
        return Outcome(False, None, answer, unknown=True)
    said = detail(answer) if detail is not None else None
    code = answer.status_code
    if 200 <= code < 300 and said is None:
        return Outcome(True, code, f"answered {code}")
    if code >= 500 or code == 408:
        return Outcome(False, code, (said or f"answered {code}") + "; whether it was applied is not known", True)
    return Outcome(False, code, said or f"answered {code}: {_brief(answer)}")


def take_turns(items: list[Any], budget: int, interval: int) -> list[Any]:
    """At most ``budget`` of ``items`` (in a stable order) for this poll: all of them when they fit,
    else a window that moves on by one budget each ``interval`` seconds, so every item gets its turn
    and a large account still finishes its polls within the platform's limits."""
    if len(items) <= budget:
        return items
    if budget <= 0:
        return []
    start = (int(time.time() // max(1, interval)) * budget) % len(items)
    return (items[start:] + items[:start])[:budget]
