"""Every platform in the registry is complete: what each event type needs, every role consistent."""

from __future__ import annotations

import pytest

from workhooks.config.loading import parse_config
from workhooks.core.events import Event
from workhooks.platforms import EVENT_TYPES, PLATFORMS, of_event_type
from workhooks.platforms.base import Platform

ALL = list(PLATFORMS.values())


@pytest.mark.parametrize("platform", ALL, ids=lambda platform: platform.name)
def test_every_event_type_is_applied_named_and_has_a_default_message(platform: Platform) -> None:
    for kind in platform.event_types:
        assert kind.startswith(f"{platform.name}."), kind
        assert of_event_type(kind) is platform
        assert kind in platform.appliers or platform.poller is not None, kind
        assert kind in platform.presenter.defaults, f"{kind} has no default message"


@pytest.mark.parametrize("platform", ALL, ids=lambda platform: platform.name)
def test_a_platform_either_calls_back_with_samples_or_is_polled(platform: Platform) -> None:
    if platform.callback is None:
        assert platform.poller is not None and platform.samples is None
        return
    assert platform.samples is not None and platform.samples.kinds
    made = set()
    for kind in platform.samples.kinds:
        content_type, body = platform.samples.body(kind, 4242)
        callback = platform.callback.parse(body, content_type)
        assert callback.type in platform.event_types and "4242" in callback.subject
        made.add(callback.type)
    assert made == set(platform.event_types), "every callback event type has a sample"


@pytest.mark.parametrize("platform", ALL, ids=lambda platform: platform.name)
def test_the_config_schema_takes_each_platform_by_its_name(platform: Platform) -> None:
    assert platform.settings.model_fields["platform"].annotation.__args__ == (platform.name,)  # type: ignore[union-attr]
    with pytest.raises(Exception, match=f"sources.s.{platform.name}"):
        parse_config(f"sources: {{s: {{platform: {platform.name}, not_a_setting: 1}}}}")


def test_event_types_are_unique_across_platforms() -> None:
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES))


def test_an_event_of_an_unknown_platform_has_none() -> None:
    assert of_event_type(Event("evt_x", "s", "elsewhere.thing.happened", "x/1", "").type) is None
