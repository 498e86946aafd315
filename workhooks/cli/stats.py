"""`workhooks stats`: queue depth and age, workers, rates, failures per sink, polls — read from Redis."""

from __future__ import annotations

import argparse
from typing import Any

from workhooks.cli import common
from workhooks.store import health


def cmd_stats(args: argparse.Namespace) -> int:
    config = common.load(None)
    found = health.read(common.connect(), config.sources, config.sinks)
    unknown = {labels[0]: int(value) for labels, value in found.counters.get("workhooks_unknown_statuses", [])}
    if args.json:
        common.print_json({
            "queue": {"depth": found.queue_depth, "oldest_age_s": found.oldest_age},
            "workers": found.workers,
            "events": {"last_5m": found.events_last_5m, "last_hour": found.events_last_hour},
            "dead_letters": {"total": found.dead_letters, "last_hour": found.dead_last_hour},
            "quarantined": found.quarantined,
            "sinks": {name: counts | (found.sinks[name].as_dict() if name in found.sinks else {})
                      for name, counts in found.deliveries(config.sinks).items()},
            "unknown_statuses": dict(sorted(unknown.items())),
            "polls": {name: {"last_ok_at": poll.last_ok_at, "age_s": poll.age, "last_error": poll.last_error}
                      for name, poll in found.polls.items()},
        })  # fmt: skip
        return 0
    oldest = found.oldest_age
    print(f"queue        {found.queue_depth} waiting" + (f", oldest {oldest:.0f} s" if oldest is not None else ""))
    print(f"workers      {found.workers}")
    last5, last60 = found.events_last_5m, found.events_last_hour
    print(f"events       {last5} in the last 5 min ({last5 / 300:.1f}/s), {last60} in the last hour")
    print(
        f"dead letters {found.dead_letters} ({found.dead_last_hour} in the last hour); quarantined {found.quarantined}"
    )
    for sink, counts in found.deliveries(config.sinks).items():
        shown = ", ".join(f"{outcome} {count}" for outcome, count in counts.items())
        state = found.sinks.get(sink)
        if state is not None:
            shown += f"; {state.shown.replace('_', '-')}, {state.in_flight} in flight, {state.held} held"
        print(f"sink         {sink:<20} {shown}")
    for name, count in sorted(unknown.items()):
        print(f"unknown      {name:<20} {count} events with a status the platform's document does not name")
    for name, poll in found.polls.items():
        age = poll.age
        ok = f"last ok {age:.0f} s ago" if age is not None else "never polled successfully"
        print(f"poll         {name:<20} {ok}" + (f"; last error: {poll.last_error}" if poll.last_error else ""))
    return 0


def register(commands: Any) -> None:
    stats = commands.add_parser("stats", help="queue depth and age, workers, rates, failures per sink, polls")
    common.add_json(stats)
    stats.set_defaults(func=cmd_stats)
