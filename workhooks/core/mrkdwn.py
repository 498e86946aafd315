"""Slack's mrkdwn: text a person or a platform wrote, made inert (no <!channel>, no <url|label> links)."""

from __future__ import annotations


def escape(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
