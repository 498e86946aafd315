"""`workhooks serve` refuses a public address while the config holds the examples' published credentials.

deploy/workhooks.example.yaml falls back to `example-…-change-me` when a variable is unset, so that
`make run` works with nothing set; the container image ships that file. The fallbacks are printed in
the README, so on any address but the loopback they would open the receiver and the console to anyone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path

from workhooks.config.schema import Config

PLACEHOLDER = "change-me"  # in every example credential: workhooks.example.yaml, workhooks.env.example, the k8s Secret
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
FALLBACK = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-([^}]*)\}")


def is_public(host: str) -> bool:
    """Anything but a loopback address or name: 0.0.0.0, ::, an interface's address, a host name."""
    if host.lower() in LOOPBACK_NAMES:
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def example_credentials(config: Config) -> list[str]:
    """The config keys whose credential is one of the examples' placeholders, e.g. ``sources.wordy-main``."""
    found = [f"sources.{name}" for name, source in config.sources.items() if _placeholder(source.secrets())]
    found += [f"sinks.{name}" for name, sink in config.sinks.items() if _placeholder(sink.secrets())]
    if config.admin.token is not None and _placeholder([config.admin.token.get_secret_value()]):
        found.append("admin.token")
    return found


def refusal(config: Config, host: str, path: Path | None, env: Mapping[str, str]) -> str | None:
    """Why `serve` must not start on ``host`` with ``config`` (read from ``path``), or None if it may."""
    if not is_public(host):
        return None
    keys = example_credentials(config)
    if not keys:
        return None
    variables = [name for name in _fallback_variables(path) if not env.get(name)]
    what = f"set {', '.join(variables)}" if variables else "replace them with your own"
    return (f"refusing to listen on {host} with the examples' published credentials ({', '.join(keys)}): "
            f"{what}, or listen on 127.0.0.1")  # fmt: skip


def _placeholder(secrets: list[str]) -> bool:
    return any(PLACEHOLDER in secret for secret in secrets)


def _fallback_variables(path: Path | None) -> list[str]:
    """The variables whose `${VAR:-…change-me}` fallback the config file uses."""
    try:
        text = path.read_text() if path is not None else ""
    except OSError:
        return []
    return sorted({name for name, default in FALLBACK.findall(text) if PLACEHOLDER in default})
