"""Errors raised by the receiver's pure functions; each maps onto one HTTP answer."""

from __future__ import annotations


class ConfigError(Exception):
    """workhooks.yaml is missing, malformed or inconsistent; the message names each key path."""


class CallbackError(Exception):
    """Base of every error a callback can cause; never a 5xx."""

    status_code = 400


class UnsupportedMediaTypeError(CallbackError):
    status_code = 415


class ParseError(CallbackError):
    """The body authenticated (or needs none yet) but is not a callback we understand."""

    status_code = 400
