"""`workhooks sinks`: each configured sink, where it delivers (secrets hidden) and its deliveries by outcome."""

from __future__ import annotations

import argparse
from typing import Any

from workhooks.cli import common
from workhooks.store import health


def cmd_sinks(args: argparse.Namespace) -> int:
    config = common.load(None)
    counts = health.read(common.connect(), config.sources).deliveries(config.sinks)
    listed = [
        {"name": name, "type": sink.type, "where": sink.where(), "people": sink.for_people, "deliveries": counts[name]}
        for name, sink in config.sinks.items()
    ]
    if args.json:
        common.print_json({"sinks": listed})
        return 0
    for name, sink in config.sinks.items():
        shown = ", ".join(f"{outcome} {count}" for outcome, count in counts[name].items())
        print(f"{name:<20} {sink.type:<10} {sink.where()}  ({shown})")
    return 0


def register(commands: Any) -> None:
    sinks = commands.add_parser("sinks", help="the configured sinks, where each delivers, deliveries by outcome")
    common.add_json(sinks)
    sinks.set_defaults(func=cmd_sinks)
