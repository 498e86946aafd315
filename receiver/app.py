"""create_app(): assembly only — routes, lifespan, middleware."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from receiver import links, routes, slack
from receiver.deadline import BodyTimeoutError
from receiver.front import Front
from receiver.hooks import Endpoint, Hooks
from receiver.intake import Intake
from receiver.openapi import HOOK_PATHS
from receiver.protocol import bound
from receiver.spool import Spool
from workhooks.config.loading import load_config
from workhooks.config.schema import Config
from workhooks.core.logs import configure_logging
from workhooks.core.runtime import settle_garbage_collector
from workhooks.store import connection
from workhooks.store.ingest import Ingest

REDIS_POOL_SIZE = 64


def processes() -> int:
    """How many receiver processes share this machine's port (`workhooks serve --workers`, WEB_CONCURRENCY)."""
    text = os.environ.get("WEB_CONCURRENCY", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else 1


def create_app(config: Config | None = None, url: str | None = None) -> Starlette:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    config = config if config is not None else load_config()
    limit = config.receiver.max_body_bytes
    bound(config.receiver)  # the header bounds, when uvicorn runs several processes (receiver/protocol.py)
    limits = config.receiver.failure_limit

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis_url = url or connection.url()
        app.state.redis = connection.connect_async(redis_url, REDIS_POOL_SIZE)
        app.state.sync_redis = connection.connect(redis_url)  # actions queue RQ jobs (rare: clicks, links)
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
            app.state.sync_redis.close()

    hooks = [
        Route(path, Endpoint(routes.HANDLERS[style], limit, routes.refused)) for path, style in HOOK_PATHS.items()
    ]  # served by Front, not the router (receiver/hooks.py): any other method is the catch-all's 404 below
    app = Starlette(
        routes=[
            # Any other /hooks/ path (a trailing slash too), any method: 404, never a 307 repeating the token.
            Route("/hooks/{rest:path}", routes.not_found, methods=routes.ANY_METHOD),
            Route("/slack/actions", slack.handle, methods=["POST"], max_body_size=slack.MAX_PAYLOAD),
            Route("/act/{token}", links.page, methods=["GET", "POST"], max_body_size=links.MAX_FORM),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/readyz", routes.readyz, methods=["GET"]),
            Route("/metrics", routes.metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", routes.openapi, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                Front,  # the client's address, the failure limiter, the body deadline, the request line
                sources=frozenset(config.sources),
                body_timeout=config.receiver.body_timeout,
                burst=limits.burst,
                per_minute=limits.per_minute,
                trusted_proxies=config.receiver.trusted_proxies,
                processes=processes(),
                hooks=Hooks(hooks),
            ),
        ],
        exception_handlers={
            HTTPException: routes.http_error,
            ClientDisconnect: routes.http_error,
            BodyTimeoutError: routes.http_error,
        },
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.slack_teams = {}  # slack_app sink -> its workspace, as auth.test told (receiver/slack.py)
    app.state.secrets = tuple(config.secrets())  # read per request: once here, not through pydantic each time
    return app
