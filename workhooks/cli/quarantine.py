"""`workhooks quarantine list|show|replay`: bodies that authenticated but could not be parsed."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from workhooks.cli import common
from workhooks.store import quarantine
from workhooks.store.ingest import Ingest


def _shown(item: quarantine.Quarantined) -> dict[str, Any]:
    return {**asdict(item), "body": item.body.decode("utf-8", "replace")}


def cmd_quarantine(args: argparse.Namespace) -> int:
    if args.action == "show" and args.id is None:
        args.parser.error("quarantine show needs an id (see 'workhooks quarantine list')")
    connection = common.connect()
    if args.action == "list":
        items = quarantine.list_items(connection)
        if args.json:
            common.print_json({"quarantined": [_shown(item) for item in items]})
            return 0
        for item in items:
            print(f"{item.id}  {item.received_at}  {item.source:<16} {len(item.body):>7} B  {item.reason}")
        print(f"{len(items)} quarantined")
        return 0
    if args.action == "show":
        shown = quarantine.get(connection, args.id)
        if shown is None:
            print(f"workhooks: no quarantined body {args.id}", file=sys.stderr)
            return 1
        if args.json:
            common.print_json(_shown(shown))
            return 0
        for label in ("id", "source", "received_at", "content_type", "reason"):
            print(f"{label}: {getattr(shown, label)}")
        print()
        print(shown.body.decode("utf-8", "replace"))
        return 0
    config = common.load(None)
    ingest, failures = Ingest(), 0
    every = args.id in (None, "all")
    listed = quarantine.list_items(connection, limit=10_000) if every else []
    targets = [entry.id for entry in listed] if every else [args.id]
    for item_id in common.progress(targets, "replaying quarantined bodies"):
        ok, what = quarantine.replay(connection, config, item_id, ingest)
        print(f"{item_id}: {what}")
        failures += not ok
    return 1 if failures else 0


def register(commands: Any) -> None:
    quarantined = commands.add_parser("quarantine", help="bodies that authenticated but could not be parsed")
    quarantined.add_argument("action", choices=["list", "show", "replay"])
    quarantined.add_argument("id", nargs="?", help="an id from 'list' (show: required; replay: default all)")
    common.add_json(quarantined)
    quarantined.set_defaults(func=cmd_quarantine, parser=quarantined)
