"""`workhooks route --event FILE`: which routes and sinks one event reaches, and what people would read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workers import messages, router
from workers.exceptions import DeliveryError
from workhooks.cli import common
from workhooks.core.events import Event


def cmd_route(args: argparse.Namespace) -> int:
    config = common.load(None)
    try:
        event = Event.from_json(Path(args.event).read_bytes())
    except (OSError, ValueError, KeyError, AttributeError) as error:
        print(f"workhooks: {args.event}: not a CloudEvent JSON file ({error})", file=sys.stderr)
        return 2
    print(f"event {event.type} {event.subject} from {event.source} (phase {event.phase})")
    print("\n".join(router.explain(config, event)))
    targets = router.plan(config, event)
    print(f"sinks: {', '.join(target.sink for target in targets) or '(none)'}")
    for target in targets:
        if config.sinks[target.sink].for_people:
            try:
                print(f"  {target.sink}: {messages.render(event, target.template).title}")
            except DeliveryError as error:
                print(f"  {target.sink}: cannot render: {error}")
    return 0


def register(commands: Any) -> None:
    route = commands.add_parser("route", help="explain which routes and sinks one sample event reaches")
    route.add_argument("--event", required=True, help="a CloudEvent JSON file")
    route.set_defaults(func=cmd_route)
