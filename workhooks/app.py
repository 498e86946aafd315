"""What `workhooks serve` runs: the receiver, plus the admin API and console when a token is set."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from receiver import app as receiver_app
from workhooks.admin import ADMIN_PATHS, SECURITY, create_admin
from workhooks.config.loading import load_config
from workhooks.config.schema import Config
from workhooks.store.connection import url as redis_url


def create_app(config: Config | None = None, url: str | None = None) -> Starlette:
    config = config if config is not None else load_config()
    app = receiver_app.create_app(config, url)
    admin = create_admin(config, url or redis_url())
    if admin is not None:
        app.router.routes.append(Mount("/admin", app=admin, name="admin"))
        app.state.mounted_paths = [(ADMIN_PATHS, SECURITY)]
    return app
