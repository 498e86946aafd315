"""What a sink that reads the subject's state needs (slack_app, email with action links): this worker's
Redis and config. Built on first use, once per process."""

from __future__ import annotations

import functools

import redis

from workhooks.config.schema import Config
from workhooks.store import connection


@functools.cache
def redis_connection() -> redis.Redis:
    return connection.connect(connection.url())


def config() -> Config:
    from workers import settings  # workers.settings builds the sinks: imported when first needed

    return settings.config()
