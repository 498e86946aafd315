"""create_app(): assembly only — routes, lifespan, middleware."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from receiver import connection, routes
from receiver.config import Config, load_config
from receiver.ingest import Ingest
from receiver.intake import Intake
from receiver.logs import RequestLog, configure_logging
from receiver.ratelimit import FailureLimiter
from receiver.runtime import settle_garbage_collector
from receiver.spool import Spool

REDIS_POOL_SIZE = 64


def create_app(config: Config | None = None, url: str | None = None) -> Starlette:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    config = config if config is not None else load_config()
    limit = config.receiver.max_body_bytes
    limits = config.receiver.failure_limit

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis_url = url or connection.url()
        app.state.redis = connection.connect_async(redis_url, REDIS_POOL_SIZE)
        ingest = Ingest(replicas=1 if connection.replicated(redis_url) else 0)
        app.state.intake = Intake(app.state.redis, Spool(config.receiver.spool_dir), ingest)
        drainer = asyncio.create_task(app.state.intake.run_drainer())
        settle_garbage_collector()
        try:
            yield
        finally:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
            app.state.intake.spool.close()
            await app.state.redis.aclose()

    app = Starlette(
        routes=[
            Route("/hooks/{source}/{token}", routes.wordy_callback, methods=["POST"], max_body_size=limit),
            Route("/hooks/{source}", routes.sharedworkforce_callback, methods=["POST"], max_body_size=limit),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/readyz", routes.readyz, methods=["GET"]),
            Route("/metrics", routes.metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", routes.openapi, methods=["GET"]),
        ],
        middleware=[
            Middleware(RequestLog),
            Middleware(FailureLimiter, burst=limits.burst, per_minute=limits.per_minute),
        ],
        lifespan=lifespan,
    )
    app.state.config = config
    return app
