"""`workhooks migrate`: bring the data in Redis to the layout this release uses (safe to run twice)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workhooks.cli import common
from workhooks.store import schema


def cmd_migrate(args: argparse.Namespace) -> int:
    connection = common.connect()
    if args.check:
        try:
            found = schema.check(connection)
        except schema.SchemaError as error:
            print(f"workhooks: {error}", file=sys.stderr)
            return 1
        shown = "empty" if found is None else f"layout {found}"
        print(f"store: {shown}; this release writes layout {schema.CURRENT}")
        return 0 if found in (None, schema.CURRENT) else 1
    try:
        schema.migrate(connection, report=print)
    except schema.SchemaError as error:
        print(f"workhooks: {error}", file=sys.stderr)
        return 1
    return 0


def refuse_unreadable(connection: Any) -> None:
    """For a process starting: exit 2 with the reason when the data's layout cannot be read."""
    try:
        schema.ensure(connection)
    except schema.SchemaError as error:
        print(f"workhooks: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def register(commands: Any) -> None:
    migrate = commands.add_parser("migrate", help="bring the data in Redis to this release's layout")
    migrate.add_argument(
        "--check", action="store_true", help="only say which layout the data has (exit 1: not current)"
    )
    migrate.set_defaults(func=cmd_migrate)
