"""Reading workhooks.yaml, once per process.

``${VAR}`` and ``${VAR:-default}`` in string values are replaced from the environment
after YAML parsing, so a variable's value can never change the document's structure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from workhooks.config.schema import Config
from workhooks.core.exceptions import ConfigError

DEFAULT_CONFIG_PATH = "workhooks.yaml"
EXAMPLE_CONFIG_PATH = Path(__file__).resolve().parent.parent.parent / "deploy" / "workhooks.example.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(value: Any, path: str, env: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: _substitute(item, f"{path}.{key}" if path else str(key), env, problems) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_substitute(item, f"{path}.{index}", env, problems) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    return _VAR.sub(replace, value)


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        lines.append(f"{location or '(top level)'}: {item['msg']}")
    return "\n".join(lines)


def parse_config(text: str, env: Mapping[str, str] | None = None, origin: str = "workhooks.yaml") -> Config:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping with sources, sinks and routes")
    problems: list[str] = []
    document = _substitute(document, "", os.environ if env is None else env, problems)
    if problems:
        raise ConfigError(f"{origin}:\n" + "\n".join(problems))
    try:
        return Config.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{origin}:\n{_format_errors(exc)}") from None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """WORKHOOKS_CONFIG, else ./workhooks.yaml, else the example shipped in deploy/."""
    env = os.environ if env is None else env
    if env.get("WORKHOOKS_CONFIG"):
        return Path(env["WORKHOOKS_CONFIG"])
    if Path(DEFAULT_CONFIG_PATH).exists():
        return Path(DEFAULT_CONFIG_PATH)
    return EXAMPLE_CONFIG_PATH


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path) if path is not None else config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(text, env, origin=str(path))
