"""What a worker process loads once: the config and the sinks built from it."""

from __future__ import annotations

import functools

from workers import sinks
from workhooks.config.loading import load_config
from workhooks.config.schema import Config


@functools.cache
def config() -> Config:
    return load_config()


@functools.cache
def sink(name: str) -> sinks.Sink | None:
    settings = config().sinks.get(name)
    return sinks.build(settings, name) if settings is not None else None
