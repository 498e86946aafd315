"""WorkReduce has no approve endpoint (workreduce-api-v2.txt: orders are read only): a link to the order."""

from __future__ import annotations

from urllib.parse import quote

from workhooks.platforms.base import Action, State
from workhooks.platforms.workreduce.settings import WorkReduceSettings


def order_link(settings: WorkReduceSettings, subject: str, state: State) -> str | None:
    if settings.order_url is None:
        return None
    return settings.order_url.replace("{number}", quote(subject.removeprefix("order/"), safe=""))


ACTIONS: dict[str, Action] = {
    "open": Action("open", "Open order", lambda state: not state.get("removed"), link=order_link),
}
