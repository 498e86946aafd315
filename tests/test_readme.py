"""The README's configuration examples are valid configuration."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from workhooks.config.loading import parse_config

README = (Path(__file__).parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.S)
VARIABLE = re.compile(r"\$\{([A-Z_]+)\}")


def environment(text: str) -> dict[str, str]:
    values = {
        "ERP_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
        "SLACK_BOT_TOKEN": "xoxb-1111111111-2222222222222-abcdefabcdef",
        "WORKHOOKS_LINK_SECRET": "x" * 43,
    }
    return {name: values.get(name, "x" * 24) for name in VARIABLE.findall(text)}


def test_the_readme_has_an_example_for_every_sink_type() -> None:
    types = {match for block in BLOCKS for match in re.findall(r"type: (\w+)", block)}
    assert {"log", "webhook", "slack", "slack_app", "email", "apprise"} <= types


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.startswith("sources:")])
def test_full_config_examples_parse(block: str) -> None:
    parse_config(block, environment(block))


@pytest.mark.parametrize("block", [b for b in BLOCKS if re.match(r"[\w-]+:\s*(\{type|\n\s+type:)", b)])
def test_sink_examples_parse(block: str) -> None:
    text = "sinks:\n" + textwrap.indent(block, "  ")
    config = parse_config(text, environment(text))
    assert config.sinks


def test_the_quick_starts_cli_steps_are_the_ones_test_up_runs_with_no_redis_url() -> None:
    """tests/workhooks/test_up.py runs these from a second "terminal" with no REDIS_URL and no --url."""
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    steps = [line.split("#")[0].split() for line in quick_start.splitlines() if line.startswith(".venv/bin/workhooks")]
    assert steps == [
        [".venv/bin/workhooks", "send", "wordy-main"],
        [".venv/bin/workhooks", "events", "list", "--since", "10m"],
        [".venv/bin/workhooks", "stats"],
    ]
    assert "REDIS_URL=" not in quick_start.split("Or let the CLI post a sample", 1)[1].split("```", 2)[1]
