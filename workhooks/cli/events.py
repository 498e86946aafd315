"""`workhooks events list|show`: what was accepted, newest first, and what became of each."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any, get_args

from workers import delivery, eventlog, state
from workhooks.cli import common
from workhooks.core.events import Event, Phase
from workhooks.store import actions, keys


def _listed(item: eventlog.Listed) -> dict[str, Any]:
    return {"event": item.event.to_cloudevent(), "received_at": item.received_at, "status": item.status,
            "deliveries": item.deliveries}  # fmt: skip


def cmd_events(args: argparse.Namespace) -> int:
    connection = common.connect()
    if args.action == "list":
        filters = eventlog.Filters(args.source, args.type, args.subject, args.phase, args.since or 0.0, args.status)
        found, _ = eventlog.find(connection, filters, common.load(None).sinks, limit=args.limit)
        if args.json:
            common.print_json({"events": [_listed(item) for item in found]})
            return 0 if found else 1
        for item in found:
            event = item.event
            sinks = " ".join(f"{sink}:{status}" for sink, status in item.deliveries.items())
            print(f"{eventlog.age(item.received_at):>4} ago  {event.id}  {event.source:<14} {event.type:<42} "
                  f"{event.subject:<16} {event.phase or '-':<16} {item.status:<9} {sinks}".rstrip())  # fmt: skip
        print(f"{len(found)} event{'s' if len(found) != 1 else ''}", file=sys.stderr)
        return 0 if found else 1
    if not args.event_id:
        print("workhooks: events show needs an event id (see 'workhooks events list')", file=sys.stderr)
        return 2
    raw = connection.get(keys.event(args.event_id))
    if raw is None:
        print(f"workhooks: no event {args.event_id} (unknown or expired)", file=sys.stderr)
        return 1
    event = Event.from_json(raw)
    current = state.load(connection, event.source, event.subject)
    opened = [delivery.get(connection, delivery.delivery_id(event.id, name)) for name in common.load(None).sinks]
    taken = actions.for_subject(connection, event.source, event.subject)
    if args.json:
        shown_state = None if current is None else {key: value for key, value in current.items() if key != "events"}
        common.print_json({"event": event.to_cloudevent(), "state": shown_state,
                           "deliveries": [asdict(opening) for opening in filter(None, opened)],
                           "attempts": delivery.attempts(connection, event.id),
                           "actions": [record.as_dict() for record in taken]})  # fmt: skip
        return 0
    print(json.dumps(event.to_cloudevent(), indent=2, ensure_ascii=False))
    if current is not None:
        shown = {key: value for key, value in current.items() if key != "events"}
        print(f"\nstate of {event.subject}:\n" + json.dumps(shown, indent=2, ensure_ascii=False))
    print("\ndeliveries:")
    for opening in filter(None, opened):
        print(f"  {opening.sink:<20} {opening.status:<9} {opening.attempts} attempts  {opening.last_error}".rstrip())
    print("attempts:")
    for attempt in delivery.attempts(connection, event.id):
        detail = f"{attempt.get('status_code') or ''} {attempt.get('error') or ''}".strip()
        print(
            f"  {attempt['at']}  {attempt['sink']:<20} #{attempt['attempt']} {attempt['outcome']:<9} "
            f"{attempt['duration_ms']:>8} ms  {detail}".rstrip()
        )
    print(f"actions on {event.subject} (workhooks work show {event.source} {event.subject}):")
    for record in reversed(taken):
        print(f"  {record.requested_at}  {record.action:<8} by {record.actor.shown():<24} {record.status:<8} "
              f"{record.answer}".rstrip())  # fmt: skip
    return 0


def register(commands: Any) -> None:
    events = commands.add_parser(
        "events", help="list events (newest first) or show one", description="exit 1 when no event matches"
    )
    events.add_argument("action", choices=["list", "show"])
    events.add_argument("event_id", nargs="?", help="show: the event's id")
    events.add_argument("--source", help="a source name from workhooks.yaml")
    events.add_argument("--type", help="an event type or a glob: wordy.job.*")
    events.add_argument("--subject", help="job/123, task/501234, order/77, ...")
    events.add_argument("--phase", choices=list(get_args(Phase)))
    events.add_argument("--since", type=common.parse_since, help="30m, 6h, 2d or an ISO time")
    events.add_argument("--status", choices=eventlog.STATUSES, help="what became of it")
    events.add_argument("--limit", type=int, default=50)
    common.add_json(events)
    events.set_defaults(func=cmd_events)
