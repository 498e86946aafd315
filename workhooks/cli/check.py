"""`workhooks check`: validate workhooks.yaml and show what it configures, and where each event type goes."""

from __future__ import annotations

import argparse
import os
from typing import Any

from workers.router import reachable
from workhooks.cli import common, local
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
    lines += _actions(config, base_url)
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


def _actions(config: Config, base_url: str) -> list[str]:
    """Who may act from Slack on each source, and where the Slack app's Request URL points."""
    lines = []
    for name, source in config.sources.items():
        platform = PLATFORMS[source.platform]
        usable = [action for action in platform.actions.values() if action.perform and action.usable(source)]
        if not usable:
            continue
        slack = [action.name for action in usable if source.actions.enabled(action)]
        money = [a.name for a in usable if a.spends_money and a.name not in source.actions.rules()]
        lines.append(f"  {name:<20} from Slack: {', '.join(slack) or 'nobody (actions.allow is empty)'}"
                     + (f"; off until named (it spends money): {', '.join(money)}" if money else ""))  # fmt: skip
    if any(sink.type == "slack_app" for sink in config.sinks.values()):
        lines.append(f"  the Slack app's Request URL: POST {base_url}/slack/actions")
    return ["actions (the console and the CLI: any that applies; README: Acting on work):", *lines] if lines else []


def summary(config: Config) -> dict[str, Any]:
    """What `describe` shows, as data, for `workhooks check --json`."""
    sources = []
    for name, source in config.sources.items():
        reader = PLATFORMS[source.platform].callback
        item: dict[str, Any] = {"name": name, "platform": source.platform}
        if reader is not None:
            item.update(path=HOOK_SHOWN[reader.auth].format(name=name).split()[0], auth=reader.auth)
        else:
            item.update(poll_interval=source.interval())
        sources.append(item)
    return {
        "sources": sources,
        "console": config.admin.token is not None,
        "sinks": [{"name": name, "type": sink.type, "where": sink.where()} for name, sink in config.sinks.items()],
        "routes": [
            {
                "match": route.match.model_dump(exclude_none=True, mode="json"),
                "to": route.to,
                "continue": route.continue_,
            }
            for route in config.routes
        ],
        "reach": {name: {kind: list(to) for kind, to in kinds.items()} for name, kinds in reachable(config).items()},
    }


def cmd_check(args: argparse.Namespace) -> int:
    path = args.path or str(config_path())
    config = common.load(path)
    found = common.redis_url_or_none()
    if args.json:
        common.print_json({"path": path, "ok": True, "redis": found and describe_redis_url(found), **summary(config)})
        return 0
    print(f"{path}: OK")
    if found is None:
        print(f"redis: none (REDIS_URL is unset and no embedded Redis runs in {local.where()})")
    else:
        embedded = "" if os.environ.get("REDIS_URL") else "  (the embedded Redis of this folder)"
        print(f"redis: {describe_redis_url(found)}{embedded}")
    print("\n".join(describe(config)))
    return 0


def register(commands: Any) -> None:
    check = commands.add_parser("check", help="validate workhooks.yaml and show what it configures")
    check.add_argument(
        "path", nargs="?", help="config file (default: $WORKHOOKS_CONFIG, ./workhooks.yaml, the example)"
    )
    common.add_json(check)
    check.set_defaults(func=cmd_check)
