"""`workhooks spool depth|drain`: callbacks a receiver spooled while Redis was away."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from receiver.spool import Spool, in_arrival_order
from workhooks.cli import common
from workhooks.store.ingest import Ingest


def cmd_spool(args: argparse.Namespace) -> int:
    """Drain a spool folder into Redis (one a receiver left behind: a dead host's disk, a restored volume)."""
    directory = args.directory or common.load(None).receiver.spool_dir
    spool = Spool(directory)
    if args.action == "depth":
        print(f"{spool.depth()} callbacks waiting in {directory}")
        return 0
    connection, ingest = common.connect(), Ingest()
    connection.ping()
    moved = duplicates = 0
    with spool.claim() as paths:  # only files no live receiver holds
        records = in_arrival_order(paths)  # across receivers' files, each as of when it arrived
        for item in common.progress(records, f"draining {directory}"):
            created = ingest.submit_sync(connection, item, late=True).created
            moved, duplicates = moved + created, duplicates + (not created)
        for path in paths:
            path.unlink()
    spool.close()
    print(f"{moved} callbacks queued, {duplicates} already in Redis, from {directory}")
    return 0


def register(commands: Any) -> None:
    spool = commands.add_parser("spool", help="callbacks a receiver spooled while Redis was away: depth, or drain")
    spool.add_argument("action", choices=["depth", "drain"])
    spool.add_argument("directory", nargs="?", type=Path, help="default: receiver.spool_dir from workhooks.yaml")
    spool.set_defaults(func=cmd_spool)
