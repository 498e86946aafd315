"""What a worker process loads once: the config and the sinks built from it."""

from __future__ import annotations

import functools

from receiver.config import Config, load_config
from workers import sinks


@functools.cache
def config() -> Config:
    return load_config()


@functools.cache
def sink(name: str) -> sinks.Sink | None:
    settings = config().sinks.get(name)
    return sinks.build(settings) if settings is not None else None
