"""`workhooks check`: validate workhooks.yaml and show what it configures, and where each event type goes."""

from __future__ import annotations

import argparse
from typing import Any

from workers.router import reachable
from workhooks.cli import common
from workhooks.config.loading import config_path
from workhooks.config.schema import Config
from workhooks.platforms import PLATFORMS
from workhooks.store.connection import describe as describe_redis_url

HOOK_SHOWN = {"path_token": "/hooks/{name}/<token>", "api_key": "/hooks/{name}   (X-API-Key or api_key)"}


def describe(config: Config, base_url: str = "") -> list[str]:
    lines = ["sources:"]
    for name, source in config.sources.items():
        reader = PLATFORMS[source.platform].callback
        if reader is not None:
            shown = HOOK_SHOWN[reader.auth].format(name=name)
            lines.append(f"  {name:<20} {source.platform:<16} POST {base_url}{shown}")
        else:
            lines.append(f"  {name:<20} {source.platform:<16} polled every {source.interval()} s")
    if config.admin.token is not None:
        lines.append(f"console: {base_url}/admin/  (admin.token)")
    lines.append("sinks:")
    for name, sink in config.sinks.items():
        lines.append(f"  {name:<20} {sink.type:<16} {sink.where()}")
    lines.append("routes:")
    for index, route in enumerate(config.routes, 1):
        conditions = [
            f"{key}={','.join(map(str, value))}"
            for key, value in route.match.model_dump(exclude_none=True, exclude={"data"}).items()
        ]
        conditions += [f"data.{key}={','.join(map(str, value))}" for key, value in route.match.data.items()]
        stop = "  (continue: false)" if not route.continue_ else ""
        lines.append(f"  {index}. {' '.join(conditions) or '(every event)'} -> {', '.join(route.to)}{stop}")
    lines.append("event types reach:")
    for name, kinds in reachable(config).items():
        for kind, reached in kinds.items():
            lines.append(f"  {name:<20} {kind:<42} -> {', '.join(reached) or '(nothing)'}")
    return lines


def cmd_check(args: argparse.Namespace) -> int:
    path = args.path or str(config_path())
    config = common.load(path)
    print(f"{path}: OK")
    print(f"redis: {describe_redis_url(common.checked_redis_url())}")
    print("\n".join(describe(config)))
    return 0


def register(commands: Any) -> None:
    check = commands.add_parser("check", help="validate workhooks.yaml and show what it configures")
    check.add_argument(
        "path", nargs="?", help="config file (default: $WORKHOOKS_CONFIG, ./workhooks.yaml, the example)"
    )
    check.set_defaults(func=cmd_check)
