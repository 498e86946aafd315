"""`workhooks sinks [list|pause|resume]`: each sink, where it delivers (secrets hidden), its state and queue.

Pausing holds a sink's deliveries in its queue without attempting them or spending their retries
(an ERP's maintenance window); resuming sends them in order, at the sink's rate (docs/delivery.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from workhooks.cli import common
from workhooks.config.schema import Config
from workhooks.core.clock import utc_now
from workhooks.store import health, outbox

MAX_REASON = 200


def _rate(item: dict[str, Any]) -> str:
    rate = item["rate_limit"]
    if rate is None:
        return "no rate limit"
    per = f"{rate['per_second']:g}/s" if "per_second" in rate else f"{rate['per_minute']:g}/min"
    return f"{per} burst {rate['burst']}"


def cmd_list(args: argparse.Namespace) -> int:
    config = common.load(None)
    listed = health.read(common.connect(), config.sources, config.sinks).sink_rows(config)
    if args.json:
        common.print_json({"sinks": listed})
        return 0
    for item in listed:
        shown = ", ".join(f"{outcome} {count}" for outcome, count in item["deliveries"].items())
        state = item["state"] + (f" ({item['paused_reason']})" if item.get("paused_reason") else "")
        if item.get("probe_in_s") is not None:
            state += f", probe in {item['probe_in_s']} s"
        print(
            f"{item['name']:<20} {item['type']:<8} {state:<12} in flight {item['in_flight']}/{item['max_in_flight']}"
            f"  held {item['held']}  {_rate(item)}  {item['where']}  ({shown})"
        )
    return 0


def _known(config: Config, name: str) -> bool:
    if name in config.sinks:
        return True
    print(f"workhooks: no sink named {name!r} (configured: {', '.join(config.sinks) or 'none'})")
    return False


def cmd_pause(args: argparse.Namespace) -> int:
    config = common.load(None)
    if not _known(config, args.name):
        return 2
    reason = " ".join(args.reason.split())[:MAX_REASON] or "paused from the command line"
    outbox.pause(common.connect(), args.name, reason, utc_now())
    print(f"{args.name}: paused ({reason}); deliveries wait in its queue, no attempts, no retries spent")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    config = common.load(None)
    if not _known(config, args.name):
        return 2
    was = outbox.resume(common.connect(), args.name)
    print(f"{args.name}: {'resumed: its held deliveries go out in order' if was else 'was not paused'}")
    return 0


def register(commands: Any) -> None:
    sinks = commands.add_parser("sinks", help="the sinks: state, in flight, held, rate; pause and resume one")
    common.add_json(sinks)
    sinks.set_defaults(func=cmd_list)
    actions = sinks.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="each sink: where it delivers, state, in flight, held, rate")
    # --json before or after `list`: the subcommand's default must not undo the parent's
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document on stdout")
    listing.set_defaults(func=cmd_list)
    pause = actions.add_parser("pause", help="hold a sink's deliveries (no attempts, no retries spent)")
    pause.add_argument("name")
    pause.add_argument("--reason", default="", help="shown in sinks list, the console and the admin API")
    pause.set_defaults(func=cmd_pause)
    resume = actions.add_parser("resume", help="send a paused sink's held deliveries, in order, at its rate")
    resume.add_argument("name")
    resume.set_defaults(func=cmd_resume)
