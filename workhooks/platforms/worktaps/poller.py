"""WorkTaps accounts: GET /api/v1/accounts (limit/page), bearer token.

Errors come as 4xx with {"code": 4xxxx, "message": ...}; 40000 is "unauthorized".

Pages count from 1: the document calls `page` a page number "calculated based on the limit"
and never mentions 0 or an offset. Offset paging shifts when accounts are added or removed
while a poll pages, so an account missing from one listing is not yet "removed": it is looked
up (GET /api/v1/account/<id>), and only 40003 "Account id not found" announces the removal.
"""

from __future__ import annotations

from typing import Any

import httpx

from workhooks.core.events import Callback, Observation, digest
from workhooks.platforms.api import ApiClient, AuthError, PollError
from workhooks.platforms.base import Poller, Vanished
from workhooks.platforms.worktaps.settings import WorkTapsSettings

ENTITY = "account"
CREATED = "worktaps.account.created"
UPDATED = "worktaps.account.updated"
REMOVED = "worktaps.account.removed"
EVENT_TYPES = (CREATED, UPDATED, REMOVED)
MAX_PAGES = 10_000


def _explain(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and isinstance(body.get("code"), int):
        detail = f"WorkTaps error {body['code']}: {body.get('message', '')}"
        if body["code"] == 40000:
            raise AuthError(detail)
        if response.status_code != 429 and response.status_code < 500:
            raise PollError(detail)


def client(settings: WorkTapsSettings) -> ApiClient:
    return ApiClient(settings.timeout, headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}"})


def fetch(settings: WorkTapsSettings, api: ApiClient) -> list[dict[str, Any]]:
    url = f"{str(settings.base_url).rstrip('/')}/api/v1/accounts"
    accounts: list[dict[str, Any]] = []
    for page in range(1, MAX_PAGES + 1):
        body = api.get_json(url, {"limit": settings.page_size, "page": page}, explain=_explain)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise PollError("GET /api/v1/accounts answered no records")
        accounts += [record for record in records if isinstance(record, dict) and record.get("id") is not None]
        total = body.get("total")
        if not records or (isinstance(total, int) and len(accounts) >= total):
            return accounts
    raise PollError("too many pages of accounts")


def key(account: dict[str, Any]) -> str:
    return str(account["id"])


def snapshot(account: dict[str, Any]) -> dict[str, Any]:
    return dict(account)


def _name(account: dict[str, Any]) -> str:
    return " ".join(str(account.get(part) or "") for part in ("firstName", "lastName")).strip()


def changes(previous: dict[str, Any] | None, account: dict[str, Any]) -> list[Callback]:
    """Pure: what happened to one account since its last snapshot (None: never seen)."""
    current = snapshot(account)
    account_id = str(current["id"])
    subject = f"account/{account_id}"
    base = {"account_id": account_id, "name": _name(current), "email": current.get("email"), ENTITY: current}
    if previous is None:  # first seen, or back after a removal: a new occurrence in the presence lane
        return [Callback(CREATED, subject, base, (account_id,), "queued", Observation("presence", "present"))]
    changed = {
        field: {"from": previous.get(field), "to": current.get(field)}
        for field in sorted(set(previous) | set(current))
        if previous.get(field) != current.get(field)
    }
    if not changed:
        return []
    identity = (account_id, sorted((field, repr(change["to"])) for field, change in changed.items()))
    seen = Observation("snapshot", digest(current))  # A -> B -> A -> B: the second B is a new update
    return [Callback(UPDATED, subject, {**base, "changed": changed}, identity, "in_progress", seen)]


def removed(previous: dict[str, Any]) -> Callback:
    account_id = str(previous["id"])
    data = {"account_id": account_id, "name": _name(previous), "email": previous.get("email"), ENTITY: previous}
    seen = Observation("presence", "removed")
    return Callback(REMOVED, f"account/{account_id}", data, (account_id, "removed"), "canceled", seen)


class _NotFoundError(Exception):
    pass


def _explain_lookup(response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 and isinstance(body, dict) and body.get("code") == 40003:
        raise _NotFoundError  # "Account id [id] not found"
    _explain(response)


def vanished(settings: WorkTapsSettings, api: ApiClient, gone: list[dict[str, Any]]) -> Vanished:
    """Accounts missing from this poll's listing: removed only if WorkTaps says it has no such account."""
    announced: list[Callback] = []
    forget: list[str] = []
    for previous in gone:
        url = f"{str(settings.base_url).rstrip('/')}/api/v1/account/{key(previous)}"
        try:
            found = api.get_json(url, explain=_explain_lookup, absent=(404,))
        except _NotFoundError:
            found = None
        if isinstance(found, dict) and found.get("id") is not None:
            announced += changes(previous, found)  # still there: it only moved between pages
        else:
            announced.append(removed(previous))
            forget.append(key(previous))
    return Vanished(announced, forget)


POLLER = Poller(
    entity=ENTITY, client=client, fetch=fetch, key=key, snapshot=snapshot, changes=changes, vanished=vanished
)
