"""`workhooks send SOURCE [FILE]`: post a sample callback (or a file) to a running receiver, as the platform would."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

from workhooks.cli import common, local
from workhooks.platforms import PLATFORMS


def cmd_send(args: argparse.Namespace) -> int:
    """Post a sample (or a file) to a running receiver as the source's platform would."""
    import httpx

    config = common.load(None)
    source = config.sources.get(args.source)
    if source is None:
        print(f"workhooks: no source {args.source!r} (sources: {', '.join(config.sources)})", file=sys.stderr)
        return 2
    samples = PLATFORMS[source.platform].samples
    if samples is None:
        print(f"workhooks: {args.source} is a {source.platform} source: it is polled, it does not call back",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        path, headers, shown = samples.request(args.source, source)
        if args.file:
            content_type = args.content_type or (
                "application/xml" if args.file.suffix == ".xml" else "application/json"
            )
            payload = args.file.read_bytes()
        else:
            number = args.id if args.id is not None else random.randint(100_000, 999_999)
            content_type, payload = samples.body(args.sample or samples.kinds[0], number)
    except (ValueError, OSError) as error:
        print(f"workhooks: {error}", file=sys.stderr)
        return 2
    url = args.url or local.receiver_url()
    if url is None:
        print("workhooks: no receiver: no 'workhooks up' runs in this folder (start it with 'make run'), "
              "or pass --url", file=sys.stderr)  # fmt: skip
        return 3
    if args.url is None:
        print(f"workhooks: posting to the receiver 'workhooks up' runs in this folder ({url})", file=sys.stderr)
    try:
        response = httpx.post(url.rstrip("/") + path, content=payload,
                              headers={"content-type": content_type, **headers}, timeout=10)  # fmt: skip
    except httpx.HTTPError as error:
        print(f"workhooks: {url} did not answer ({type(error).__name__}): is the receiver running?", file=sys.stderr)
        return 3
    print(f"POST {shown} ({content_type}, {len(payload)} bytes) -> {response.status_code}")
    print(response.text)
    return 0 if response.is_success else 1


def register(commands: Any) -> None:
    send = commands.add_parser(
        "send",
        help="post a sample callback (or a file) to a running receiver, authenticated as configured",
        description="exit 0: accepted (2xx); 1: refused; 2: bad arguments; 3: no receiver answered",
    )
    send.add_argument("source", help="a Wordy or Shared Workforce source from workhooks.yaml")
    send.add_argument("file", nargs="?", type=Path, help="a body to send instead of a sample")
    send.add_argument("--sample", help="wordy: status (default) or message; sharedworkforce: task")
    send.add_argument("--id", type=int, help="the job/task id in the sample (default: random)")
    send.add_argument("--content-type", help="for a file (default: by its extension, JSON or XML)")
    send.add_argument("--url", help="the receiver (default: the one 'workhooks up' runs in this folder)")
    send.set_defaults(func=cmd_send)
