"""`workhooks serve` off the loopback with the examples' published credentials (workhooks/cli/exposure.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workhooks.cli import exposure
from workhooks.config.loading import load_config

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "deploy" / "workhooks.example.yaml"
REAL = {"WORDY_CALLBACK_TOKEN": "t" * 24, "SWF_API_KEY": "k" * 24, "WORKHOOKS_ADMIN_TOKEN": "a" * 24}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "[::]", "10.1.2.3", "example.com"])
def test_any_address_but_the_loopback_is_public(host: str) -> None:
    assert exposure.is_public(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_the_loopback_is_not_public(host: str) -> None:
    assert not exposure.is_public(host)


def test_the_example_with_nothing_set_is_refused_naming_the_keys_and_variables() -> None:
    refusal = exposure.refusal(load_config(EXAMPLE, {}), "0.0.0.0", EXAMPLE, {})
    assert refusal is not None
    assert "(sources.wordy-main, sources.swf, admin.token)" in refusal
    assert "set SWF_API_KEY, WORDY_CALLBACK_TOKEN, WORKHOOKS_ADMIN_TOKEN" in refusal


def test_only_what_is_still_a_placeholder_is_named() -> None:
    env = {"WORDY_CALLBACK_TOKEN": REAL["WORDY_CALLBACK_TOKEN"]}
    refusal = exposure.refusal(load_config(EXAMPLE, env), "0.0.0.0", EXAMPLE, env)
    assert refusal is not None and "(sources.swf, admin.token): set SWF_API_KEY, WORKHOOKS_ADMIN_TOKEN," in refusal


def test_real_credentials_may_listen_anywhere_and_the_examples_on_the_loopback() -> None:
    assert exposure.refusal(load_config(EXAMPLE, REAL), "0.0.0.0", EXAMPLE, REAL) is None
    assert exposure.refusal(load_config(EXAMPLE, {}), "127.0.0.1", EXAMPLE, {}) is None


def test_a_deploy_templates_placeholder_is_refused_too(tmp_path: Path) -> None:
    config = tmp_path / "workhooks.yaml"  # deploy/k8s/secret.example.yaml's value, unchanged
    config.write_text("admin:\n  token: change-me-to-another-long-random-token\n")
    refusal = exposure.refusal(load_config(config, {}), "::", config, {})
    assert refusal is not None and "(admin.token): replace them with your own" in refusal
