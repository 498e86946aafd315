"""Signed action links for email: what a link may do, until when, for whom — tamper-evident, no state.

A link is ``<payload>.<mac>``: the payload base64url JSON ({"k": sink, "s": source, "j": subject,
"a": action, "y": stay, "n": nonce, "e": expires (Unix s), "t": recipient}), the MAC base64url
HMAC-SHA256 of the payload with the sink's ``action_links.secret``. Opening the link (GET) shows a page;
only its POST acts, once per nonce (store/actions.py), so a mail scanner fetching links does nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

MAX_TOKEN = 2048
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,1900}\.[A-Za-z0-9_-]{43}")


class LinkError(Exception):
    """A link that is not ours, was altered, or has expired (the reason says which)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def make(secret: str, *, sink: str, source: str, subject: str, action: str, stay: str | None, to: str,
         expires: float) -> str:  # fmt: skip
    body = {"k": sink, "s": source, "j": subject, "a": action, "y": stay or "", "n": secrets.token_urlsafe(12),
            "e": int(expires), "t": to}  # fmt: skip
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def read(token: str, secrets: Mapping[str, str], now: float) -> dict[str, Any]:
    """The link's payload once its MAC (by one of ``secrets``: sink -> key) and expiry are checked; LinkError
    saying why not. Nothing in it is decoded before a MAC matches."""
    if len(token) > MAX_TOKEN or not TOKEN.fullmatch(token):
        raise LinkError("not an action link")
    payload, mac = token.split(".")
    signer = next((sink for sink, key in secrets.items() if hmac.compare_digest(_mac(key, payload), mac)), None)
    if signer is None:
        raise LinkError("this link was altered, or its key changed")
    try:
        body = json.loads(_unb64(payload))
    except (ValueError, RecursionError):
        raise LinkError("not an action link") from None
    if not isinstance(body, dict) or body.get("k") != signer or not all(isinstance(body.get(k), str) for k in "sjaynt"):
        raise LinkError("not an action link")
    if not isinstance(body.get("e"), int) or body["e"] < now:
        raise LinkError("this link has expired")
    return body
