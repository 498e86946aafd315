"""Reminders, deadlines and derived ids, fast: the pure rules, then the evaluation over a real Redis with a
clock the test sets (no processes, no sleeping)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis

from workers import state, watch
from workhooks.config.loading import parse_config
from workhooks.config.schema import Config, Reminder
from workhooks.core.derived import DEADLINE_APPROACHING, DEADLINE_MISSED, REMINDER_DUE, human, parse_time
from workhooks.core.events import Callback, Event, Observation
from workhooks.platforms import PLATFORMS
from workhooks.platforms.wordy.api import money
from workhooks.store import keys

T0 = 1_800_000_000.0  # a fixed "now" (2027-01-15)


def rule(**fields: Any) -> Reminder:
    return Reminder.model_validate({"name": "awaiting-us", "after": "24h", **fields})


def test_durations_read_as_people_write_them() -> None:
    assert [rule(after=text).after for text in ("30s", "15m", "24h", "3d", 90)] == [30, 900, 86400, 259200, 90]
    assert rule(after="1h").interval == 3600  # every defaults to after
    with pytest.raises(ValueError, match="not a duration"):
        rule(after="soon")
    with pytest.raises(ValueError, match="only open subjects wait"):
        rule(match={"phase": "completed"})


def test_a_rule_earns_one_reminder_per_interval_up_to_its_cap() -> None:
    every_day = rule(after="24h", every="24h", max=3)
    day = 86400
    counts = [watch.reminder_count(every_day, T0, T0 + offset) for offset in (0, day - 1, day, 2 * day - 1, 2 * day,
                                                                               3 * day, 30 * day)]  # fmt: skip
    assert counts == [0, 0, 1, 1, 2, 3, 3]


def test_reminder_ids_are_fixed_by_the_stay_the_rule_and_the_count() -> None:
    config = parse_config("sources: {wr: {platform: workreduce, api_key: k}}\nreminders: [{name: r, after: 1s}]")
    stored = {
        "source": "wr",
        "subject": "order/00007848",
        "current": {"order_number": "00007848", "status": "Delivered"},
        "stay": {"phase": "awaiting_client", "status": "Delivered", "since": T0, "entry": "evt_a"},
    }
    first = watch.reminder(config, config.reminders[0], "wr", "order/00007848", stored, 1, T0 + 5)
    again = watch.reminder(config, config.reminders[0], "wr", "order/00007848", stored, 1, T0 + 9)  # later, elsewhere
    second = watch.reminder(config, config.reminders[0], "wr", "order/00007848", stored, 2, T0 + 9)
    next_stay = {**stored, "stay": {**stored["stay"], "entry": "evt_b"}}
    other = watch.reminder(config, config.reminders[0], "wr", "order/00007848", next_stay, 1, T0 + 5)
    assert first.id == again.id and len({first.id, second.id, other.id}) == 3
    assert first.id.startswith("evt_") and first.type == REMINDER_DUE and first.phase == "awaiting_client"
    assert first.observation is None  # never part of the resend rule
    assert first.data["what"] == "WorkReduce order 00007848" and first.data["waiting"] == "has waited 5 seconds for you"


def test_deadlines_and_balances_are_read_as_the_documents_write_them() -> None:
    assert parse_time("2018-05-03T18:30:00Z") == 1525372200.0  # WorkReduce: ISO 8601
    assert parse_time(1333404184) == parse_time("1333404184") == 1333404184.0  # Wordy: Unix seconds
    assert parse_time(1333404184000) == 1333404184.0  # milliseconds
    assert parse_time(123) is None and parse_time("") is None and parse_time("next week") is None  # placeholders
    assert money("$100.00") == Decimal("100.00") and money("€1,234.50") == Decimal("1234.50") and money(7) == 7
    assert [human(s) for s in (0.2, 59, 60, 7200, 3 * 86400 + 5)] == ["1 second", "59 seconds", "1 minute",
                                                                       "2 hours", "3 days"]  # fmt: skip


# ---- evaluation over Redis, the clock given ---------------------------------------------------------------

CONFIG = """
sources:
  wr: {platform: workreduce, api_key: wr-key-0123456789}
reminders:
  - {name: awaiting-us, match: {phase: awaiting_client}, after: 10s, every: 10s, max: 3}
  - {name: qa, match: {data.status: In QA}, after: 5s}
deadlines: {lead: 60s}
"""


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> Iterator[Config]:
    parsed = parse_config(CONFIG)
    monkeypatch.setattr("workers.settings.config", lambda: parsed)
    yield parsed


def order(rdb: redis.Redis, status: str, at: float, number: str = "00007848", due: str | None = None) -> Event:
    """Apply one status change of a WorkReduce order (as the worker would) at Unix time ``at``."""
    snapshot = {"order_number": number, "name": "Banner", "status": status, **({"due_date": due} if due else {})}
    callback = Callback("workreduce.order.status_changed", f"order/{number}", {**snapshot, "order": snapshot},
                        (number, status, at), None, Observation("status", status))  # fmt: skip
    event = Event.from_callback("wr", callback, time=watch.iso(at).replace("Z", ".000Z"))
    event = dataclasses.replace(event, id=event.content_id)
    state.apply_event(rdb, event, lambda pipe, final: None)
    return event


def sent(rdb: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(rdb.get(keys.event(event_id.decode())) or b"{}") for event_id in rdb.lrange(keys.INBOX, 0, -1)]


def test_a_stay_is_indexed_by_phase_and_left_when_the_subject_moves(rdb: redis.Redis, config: Config) -> None:
    entered = order(rdb, "Delivered", T0)
    member = keys.subject_member("wr", "order/00007848")
    assert rdb.zscore(keys.phase_index("awaiting_client"), member) == T0
    assert state.load(rdb, "wr", "order/00007848")["stay"]["entry"] == entered.id  # type: ignore[index]
    order(rdb, "Approved", T0 + 1)
    assert rdb.zscore(keys.phase_index("awaiting_client"), member) is None  # completed: in no index


def test_a_reminder_fires_once_per_interval_then_stops_at_its_cap_or_when_the_subject_moves(
    rdb: redis.Redis, config: Config
) -> None:
    order(rdb, "Delivered", T0)
    assert watch.evaluate(rdb, config, T0 + 9) == []
    first = watch.evaluate(rdb, config, T0 + 10)
    assert len(first) == 1 and watch.evaluate(rdb, config, T0 + 15) == []  # once per interval, however often asked
    assert len(watch.evaluate(rdb, config, T0 + 20)) == 1
    assert len(watch.evaluate(rdb, config, T0 + 45)) == 1 and watch.evaluate(rdb, config, T0 + 500) == []  # max 3
    assert [event["data"]["reminder"] for event in sent(rdb)] == [1, 2, 3]

    order(rdb, "In Progress", T0 + 600)  # sent back; then delivered again: a second stay, reminders of its own
    assert watch.evaluate(rdb, config, T0 + 700) == []
    order(rdb, "Delivered", T0 + 800)
    again = watch.evaluate(rdb, config, T0 + 810)
    assert len(again) == 1 and again[0] not in first
    assert [event["data"]["reminder"] for event in sent(rdb)] == [1, 2, 3, 1]
    assert len({event["data"]["entry"] for event in sent(rdb)}) == 2


def test_a_rule_on_data_status_and_a_reevaluation_after_a_restart(rdb: redis.Redis, config: Config) -> None:
    order(rdb, "In QA", T0)
    (qa,) = watch.evaluate(rdb, config, T0 + 6)
    rdb.delete(keys.watched("wr", "order/00007848"))  # what it sent is forgotten (another scheduler, a restart)
    assert watch.evaluate(rdb, config, T0 + 7) == [qa]  # the same reminder: ingest takes it once
    assert len(sent(rdb)) == 1 and sent(rdb)[0]["data"]["rule"] == "qa"


def test_a_deadline_is_approaching_then_missed_once_each(rdb: redis.Redis, config: Config) -> None:
    order(rdb, "In Progress", T0)
    state.keep_facts(rdb, PLATFORMS["workreduce"], "wr", "order/00007848", {"due": T0 + 100})
    assert rdb.zscore(keys.DEADLINES, keys.subject_member("wr", "order/00007848")) == T0 + 100
    assert watch.evaluate(rdb, config, T0 + 30) == []  # more than the lead away
    assert len(watch.evaluate(rdb, config, T0 + 50)) == 1 and watch.evaluate(rdb, config, T0 + 60) == []
    assert len(watch.evaluate(rdb, config, T0 + 101)) == 1 and watch.evaluate(rdb, config, T0 + 200) == []
    assert [event["type"] for event in sent(rdb)] == [DEADLINE_APPROACHING, DEADLINE_MISSED]
    assert sent(rdb)[1]["data"]["due"] == watch.iso(T0 + 100)


def test_a_completed_subject_misses_no_deadline(rdb: redis.Redis, config: Config) -> None:
    order(rdb, "In Progress", T0)
    state.keep_facts(rdb, PLATFORMS["workreduce"], "wr", "order/00007848", {"due": T0 + 100})
    order(rdb, "Approved", T0 + 10)
    assert watch.evaluate(rdb, config, T0 + 500) == [] and rdb.zcard(keys.DEADLINES) == 0


def test_every_derived_event_reads_well_by_default(rdb: redis.Redis, config: Config) -> None:
    from workers import messages
    from workhooks.core import derived

    order(rdb, "Delivered", T0)
    stored = state.load(rdb, "wr", "order/00007848")
    assert stored is not None
    remind = watch.reminder(config, config.reminders[0], "wr", "order/00007848", stored, 1, T0 + 3 * 86400 + 60)
    assert messages.render(remind).title == "WorkReduce order 00007848 has waited 3 days for you"
    due = watch.deadline(config, derived.DEADLINE_APPROACHING, "wr", "order/00007848", stored, T0 + 5 * 3600, T0)
    assert messages.render(due).title == "WorkReduce order 00007848 is due in 5 hours"
    assert (
        "still Delivered"
        in messages.render(
            watch.deadline(config, derived.DEADLINE_MISSED, "wr", "order/00007848", stored, T0, T0 + 1)
        ).body
    )
    balance = {"balance": "40.00", "balance_text": "40.00", "threshold": "50", "source": "wordy-main", "crossing": 1}
    others = [
        Event("e1", "wordy-main", derived.BALANCE_LOW, "account", "", balance),
        Event("e2", "wordy-main", derived.BALANCE_RECOVERED, "account", "", balance),
        Event(
            "e3",
            "workhooks",
            derived.SOURCE_UNAUTHORIZED,
            "source/wr",
            "",
            {"source": "wr", "error": "answered 401", "incident": 1, "since": "x"},
        ),
        Event("e4", "workhooks", derived.SOURCE_RECOVERED, "source/wr", "", {"source": "wr", "incident": 1}),
        Event(
            "e5",
            "workhooks",
            derived.DELIVERY_DEAD,
            "job/1",
            "",
            {
                "event_id": "evt_1",
                "event_type": "wordy.job.status_changed",
                "subject": "job/1",
                "sink": "erp",
                "delivery_id": "evt_1-erp",
                "attempts": 7,
                "error": "answered 500",
            },
        ),
    ]
    titles = [messages.render(event).title for event in others]
    assert titles == [
        "Wordy account wordy-main: balance 40.00 is below 50",
        "Wordy account wordy-main: balance 40.00 is back above 50",
        "Source wr: the platform refuses our key",
        "Source wr is polled again",
        "Delivery to erp failed for good: wordy.job.status_changed job/1",
    ]
    assert all(event.type in derived.DEFAULTS or event.type.startswith("wordy.") for event in others)
