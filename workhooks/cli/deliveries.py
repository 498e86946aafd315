"""`workhooks deliveries` and `workhooks replay`: each delivery (event x sink), and dead ones sent again."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from workers import delivery
from workhooks.cli import common


def cmd_deliveries(args: argparse.Namespace) -> int:
    connection = common.connect()
    items = delivery.list_deliveries(connection, args.failed, args.sink, args.since or 0, args.limit)
    if args.json:
        common.print_json({"deliveries": [asdict(item) for item in items]})
        return 0
    for item in items:
        error = f"  {item.last_status_code or ''} {item.last_error}".rstrip() if item.last_error else ""
        print(f"{item.id}  {item.status:<9} {item.attempts:>2} attempts  {item.updated_at}{error}")
    print(f"{len(items)} {'dead' if args.failed else ''} deliveries".replace("  ", " "))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    connection = common.connect()
    if args.delivery_id:
        outcome = delivery.replay(connection, args.delivery_id)
        print(f"{args.delivery_id}: {outcome}")
        return 0 if outcome == "queued" else 1
    if not args.failed:
        print("workhooks: name a DELIVERY_ID, or --failed", file=sys.stderr)
        return 2
    items = delivery.list_deliveries(connection, True, args.sink, args.since or 0, limit=1_000_000)
    queued = 0
    for item in common.progress(items, "replaying dead deliveries"):
        queued += delivery.replay(connection, item.id) == "queued"
    print(f"{queued} dead deliveries queued again")
    return 0


def register(commands: Any) -> None:
    deliveries = commands.add_parser("deliveries", help="deliveries (event x sink) and their status")
    deliveries.add_argument("--failed", action="store_true", help="only dead letters (out of attempts, or refused)")
    deliveries.add_argument("--sink", help="only this sink")
    deliveries.add_argument("--since", type=common.parse_since, help="30m, 6h, 2d or an ISO time")
    deliveries.add_argument("--limit", type=int, default=100)
    common.add_json(deliveries)
    deliveries.set_defaults(func=cmd_deliveries)

    replay = commands.add_parser("replay", help="send dead deliveries again")
    replay.add_argument("delivery_id", nargs="?", help="an id from 'workhooks deliveries'")
    replay.add_argument("--failed", action="store_true", help="every dead delivery (filtered by --sink/--since)")
    replay.add_argument("--sink")
    replay.add_argument("--since", type=common.parse_since)
    replay.set_defaults(func=cmd_replay)
