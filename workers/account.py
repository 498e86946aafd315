"""A platform account's health: its balance below the source's threshold is announced once per crossing.

``wh:account:<name>`` keeps whether the balance is low and how many times it went below: the n-th
crossing's event has the id of (source, "balance_low", n), so a check run twice (two schedulers, a
retried job) announces it once; going back above the threshold is announced too, and arms the next.
"""

from __future__ import annotations

from typing import Any

import redis
import structlog

from workers import derived, settings
from workhooks.core.clock import utc_now
from workhooks.core.derived import BALANCE_LOW, BALANCE_RECOVERED
from workhooks.platforms import PLATFORMS
from workhooks.platforms.api import AuthError, PollError
from workhooks.store import keys

log = structlog.get_logger("workhooks.account")


def check(connection: redis.Redis, name: str) -> dict[str, Any]:
    """Read one source's balance and announce a crossing; returns what it saw."""
    config = settings.config()
    source = config.sources.get(name)
    platform = PLATFORMS[source.platform] if source is not None else None
    watched = source.balance_threshold() if source is not None else None
    if source is None or platform is None or platform.balance is None or watched is None:
        return {"outcome": "not watched"}
    threshold, _ = watched
    secrets = config.secrets()
    try:
        amount = platform.balance(source)
    except AuthError as error:
        derived.source_refused(connection, name, str(error), secrets)
        log.error("account_check_failed", source=name, error=str(error), hint="check the source's key")
        return {"outcome": "failed", "error": str(error)}
    except PollError as error:
        log.warning("account_check_failed", source=name, error=str(error))
        return {"outcome": "failed", "error": str(error)}
    derived.source_accepted(connection, name, secrets)
    low, crossings = connection.hmget(keys.account(name), "low", "crossings")
    was_low, count = bool(low and int(low)), int(crossings or 0)
    data = {"balance": str(amount), "balance_text": f"{amount:,.2f}", "threshold": str(threshold), "source": name}
    if amount < threshold and not was_low:
        count += 1
        derived.emit(connection, derived.event(name, BALANCE_LOW, "account", {**data, "crossing": count},
                                               (name, "balance_low", count)), secrets)  # fmt: skip
        was_low = True
    elif amount >= threshold and was_low:
        derived.emit(connection, derived.event(name, BALANCE_RECOVERED, "account", {**data, "crossing": count},
                                               (name, "balance_recovered", count)), secrets)  # fmt: skip
        was_low = False
    connection.hset(keys.account(name), mapping={"balance": str(amount), "low": int(was_low), "crossings": count,
                                                 "checked_at": utc_now()})  # fmt: skip
    connection.expire(keys.account(name), keys.STATE_TTL)
    return {"outcome": "ok", "balance": str(amount), "low": was_low}
