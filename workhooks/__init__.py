"""workhooks: the core (events, config, store, platforms) and the operator tools (CLI, admin, app) on top."""

__version__ = "0.1.0"
