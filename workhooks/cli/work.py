"""`workhooks work [list|show]` and `workhooks act`: the work as it stands, and acting on it from a shell.

`act` asks for the action as a click would (the same checks, the same once-per-stay identity, the
same audit trail: who is the OS user) and carries it out in this process, so it works in a script
with no worker running; exit 0 when the platform answered that it was done, 1 otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, get_args

from workers import actions as acting
from workers import work
from workhooks.cli import common
from workhooks.core.events import Phase
from workhooks.store import actions


def _age(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def cmd_list(args: argparse.Namespace) -> int:
    found = work.rows(common.connect(), common.load(None), args.phase, args.source, args.limit)
    if args.json:
        common.print_json({"subjects": found})
        return 0 if found else 1
    for row in found:
        last = (row["last_event"] or {}).get("type", "-")
        print(f"{row['source']:<16} {row['subject']:<18} {row['status']:<28} {row['phase'] or '-':<16} "
              f"{_age(row['in_phase_seconds']):>5}  {last}  {' '.join(row['actions'])}".rstrip())  # fmt: skip
    print(f"{len(found)} subject{'s' if len(found) != 1 else ''}", file=sys.stderr)
    return 0 if found else 1


def cmd_show(args: argparse.Namespace) -> int:
    found = work.timeline(common.connect(), common.load(None), args.source, args.subject)
    if found is None:
        print(f"workhooks: no {args.subject} in source {args.source!r} (unknown or expired)", file=sys.stderr)
        return 1
    if args.json:
        common.print_json(found)
        return 0
    print(f"{found['source']} {found['subject']}: {found['status']} ({found['phase'] or '-'})")
    for entry in found["timeline"]:
        shipped = " ".join(f"{sink}:{status}" for sink, status in (entry.get("deliveries") or {}).items())
        print(f"  {entry['at'][:19]}  {entry['kind']:<6} {entry['said']}  {shipped}".rstrip())
    names = [item["name"] + ("…" if item["ask"] else "") for item in found["actions"]]
    print(f"actions: {', '.join(names) or 'none apply now'}")
    return 0


def cmd_act(args: argparse.Namespace) -> int:
    config, connection = common.load(None), common.connect()
    actor = actions.Actor("cli", getpass.getuser())
    try:
        # no job: this process carries it out (a worker's run would race this one)
        record, new = work.ask(connection, config, args.source, args.subject, args.action, actor, args.message,
                               queue=False)  # fmt: skip
    except work.ActionRefused as refused:
        print(f"workhooks: {refused}", file=sys.stderr)
        return 1
    if not new:
        print(f"already asked by {record.actor.shown()} at {record.requested_at}: {record.status} {record.answer}")
        return 0 if record.status == "done" else 1
    status = acting.run(connection, config, record.id)
    final = actions.load(connection, record.id)
    answer = final.answer if final is not None else ""
    print(f"{args.action} {args.subject}: {status} — {answer}".rstrip(" —"))
    return 0 if status == "done" else 1


def register(commands: Any) -> None:
    listing = commands.add_parser("work", help="every job, task and order: where it stands; one's timeline")
    common.add_json(listing)
    listing.set_defaults(func=cmd_list, phase=None, source=None, limit=100)
    kinds = listing.add_subparsers(dest="action")
    rows = kinds.add_parser("list", help="subjects, most recently active first (exit 1: none)")
    rows.add_argument("--phase", choices=list(get_args(Phase)), help="awaiting_client: everything awaiting us")
    rows.add_argument("--source")
    rows.add_argument("--limit", type=int, default=100)
    rows.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document on stdout")
    rows.set_defaults(func=cmd_list)
    show = kinds.add_parser("show", help="a subject's timeline: events and actions, and what may be done now")
    show.add_argument("source")
    show.add_argument("subject", help="job/123, task/501234, order/77, ...")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document on stdout")
    show.set_defaults(func=cmd_show)

    act = commands.add_parser(
        "act",
        help="act on a subject through its platform (confirm, reject, reply, ...), audited",
        description="exit 0 when the platform answered it was done; 1 when refused, failed or not known",
    )
    act.add_argument("source")
    act.add_argument("subject", help="job/123, task/501234, ...")
    act.add_argument("action", help="wordy: confirm, reject, reply, pay; sharedworkforce: correct; "
                     "worksection: comment, close, reopen")  # fmt: skip
    act.add_argument("--message", "-m", help="the text the action needs (reject's reason, a reply, an answer)")
    act.set_defaults(func=cmd_act)
