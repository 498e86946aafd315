from __future__ import annotations

import pytest

from workhooks.config.loading import EXAMPLE_CONFIG_PATH, load_config, parse_config
from workhooks.core.exceptions import ConfigError

GOOD = """
sources:
  wordy-main:
    platform: wordy
    token: ${WORDY_CALLBACK_TOKEN}
  swf:
    platform: sharedworkforce
    api_key: ${SWF_API_KEY}
sinks:
  erp:
    type: webhook
    url: http://127.0.0.1:9000/events
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    allow_private: true
  console:
    type: log
routes:
  - match: {source: wordy-main, data.status: [acr, c]}
    to: [erp]
  - match: {type: "sharedworkforce.*"}
    to: [erp, console]
"""
ENV = {"WORDY_CALLBACK_TOKEN": "t" * 24, "SWF_API_KEY": "k-123"}


def test_variables_are_substituted_and_routes_understood() -> None:
    config = parse_config(GOOD, ENV)
    assert config.sources["wordy-main"].secrets() == ["t" * 24]
    assert config.routes[0].match.source == ["wordy-main"]
    assert config.routes[0].match.data == {"status": ["acr", "c"]}
    assert config.routes[1].match.type == ["sharedworkforce.*"]


def test_unset_variable_names_the_variable_and_key() -> None:
    with pytest.raises(ConfigError, match=r"sources\.swf\.api_key: environment variable SWF_API_KEY is not set"):
        parse_config(GOOD, {"WORDY_CALLBACK_TOKEN": "t" * 24})


def test_default_value_syntax() -> None:
    text = GOOD.replace("${SWF_API_KEY}", "${SWF_API_KEY:-fallback-key}")
    config = parse_config(text, {"WORDY_CALLBACK_TOKEN": "t" * 24})
    assert config.sources["swf"].secrets() == ["fallback-key"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("to: [erp]", "to: [nowhere]"), r"routes\.0\.to\.0: no sink named 'nowhere'"),
        (("source: wordy-main,", "source: ghost,"), r"no source named 'ghost'"),
        (("url: http://127.0.0.1:9000/events", "url: not-a-url"), r"sinks\.erp\.webhook\.url"),
        (("platform: wordy", "platform: fiverr"), r"sources\.wordy-main"),
        (("secret: whsec_", "secret: plain_"), r"whsec_"),
    ],
)
def test_errors_name_the_key_path(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(GOOD.replace(*change), ENV)


def test_short_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        parse_config(GOOD, ENV | {"WORDY_CALLBACK_TOKEN": "short"})


def test_bad_yaml_and_bad_names() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("sources: [", {})
    with pytest.raises(ConfigError, match=r"sources\.bad name"):
        parse_config("sources:\n  bad name:\n    platform: sharedworkforce\n    api_key: k\n", {})


def test_example_config_loads_without_any_environment() -> None:
    config = load_config(EXAMPLE_CONFIG_PATH, env={})
    assert set(config.sources) == {"wordy-main", "swf"}
    assert config.routes[0].to == ["console"]


def test_several_current_credentials_for_rotation() -> None:
    config = parse_config(
        """
sources:
  w: {platform: wordy, tokens: [old-token-0123456789, new-token-0123456789]}
  s: {platform: sharedworkforce, api_key: one, api_keys: [two]}
""",
        {},
    )
    assert config.sources["w"].secrets() == ["old-token-0123456789", "new-token-0123456789"]
    assert config.sources["s"].secrets() == ["one", "two"]
    with pytest.raises(ConfigError, match=r"sources\.w\.wordy: Value error, set token"):
        parse_config("sources:\n  w: {platform: wordy}\n", {})
