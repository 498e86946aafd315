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
ENV = {"WORDY_CALLBACK_TOKEN": "t" * 24, "SWF_API_KEY": "swf-key-0123456789"}


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
    text = GOOD.replace("${SWF_API_KEY}", "${SWF_API_KEY:-fallback-key-0123456789}")
    config = parse_config(text, {"WORDY_CALLBACK_TOKEN": "t" * 24})
    assert config.sources["swf"].secrets() == ["fallback-key-0123456789"]


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
  s: {platform: sharedworkforce, api_key: one-key-0123456789, api_keys: [two-key-0123456789]}
""",
        {},
    )
    assert config.sources["w"].secrets() == ["old-token-0123456789", "new-token-0123456789"]
    assert config.sources["s"].secrets() == ["one-key-0123456789", "two-key-0123456789"]
    with pytest.raises(ConfigError, match=r"sources\.w\.wordy: Value error, set token"):
        parse_config("sources:\n  w: {platform: wordy}\n", {})


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("{platform: wordy, token: short-token}", r"sources\.w\.wordy\.token: Value error, must be at least 16"),
        (
            "{platform: wordy, token: wordy-token-0123456789, api_key: k-123}",
            r"sources\.w\.wordy\.api_key: .*at least 16",
        ),
        ("{platform: sharedworkforce, api_key: swf-key}", r"sources\.w\.sharedworkforce\.api_key: .*at least 16"),
        ("{platform: sharedworkforce, api_keys: ['%s']}" % (" " * 20), r"api_keys\.0: .*at least 16"),
    ],
)
def test_callback_tokens_and_keys_shorter_than_16_characters_are_refused(source: str, where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        parse_config(f"sources:\n  w: {source}\n", {})


def test_trusted_proxies_are_networks_given_as_a_list_or_one_comma_separated_string() -> None:
    listed = parse_config("receiver: {trusted_proxies: [10.0.0.2, 'fd00::/8']}", {}).receiver.trusted_proxies
    assert [str(network) for network in listed] == ["10.0.0.2/32", "fd00::/8"]
    text = "receiver: {trusted_proxies: '${TRUSTED_PROXIES:-}'}"
    assert parse_config(text, {}).receiver.trusted_proxies == []
    from_env = parse_config(text, {"TRUSTED_PROXIES": "172.28.0.10, 10.0.0.0/8"}).receiver.trusted_proxies
    assert [str(network) for network in from_env] == ["172.28.0.10/32", "10.0.0.0/8"]
    with pytest.raises(ConfigError, match=r"receiver\.trusted_proxies\.0"):
        parse_config("receiver: {trusted_proxies: [nginx]}", {})
