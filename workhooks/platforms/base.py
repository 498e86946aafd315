"""What a platform package provides, role by role; the registry (platforms/__init__.py) holds one of each.

A platform is one package: its settings model, and the roles it plays —
- ``CallbackSource``: pure verify-and-parse of what it posts to us (Wordy, Shared Workforce);
- ``Poller``: read its API and say what changed (WorkReduce, Worksection, WorkTaps; and the
  callback platforms' reconciliation);
- ``Presenter``: its name, default message texts and links;
- appliers: how each of its event types changes the subject's state;
- ``Samples``: what a real callback looks like, for `workhooks send`;
- ``Action``: what a person may do to a subject through the platform's API (confirm, reject, reply).
Nothing here talks to Redis, RQ or Starlette: those layers sit above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from workhooks.core.events import Callback, Event, Phase
from workhooks.core.models import Model
from workhooks.core.templates import Template
from workhooks.platforms.api import ApiClient, Outcome

State = dict[str, Any]
Item = dict[str, Any]
Applier = Callable[[State, Event], State]
AuthStyle = Literal["path_token", "api_key"]
SLACK_ID = r"^[A-Z0-9]{2,32}$"  # U0123ABCD, C0456EFGH, W..., G...


class Allow(Model):
    """Who may act from Slack: these users, and members of these channels from the app's own workspace."""

    slack_users: list[Annotated[str, Field(pattern=SLACK_ID)]] = Field(default_factory=list, max_length=1000)
    slack_channels: list[Annotated[str, Field(pattern=SLACK_ID)]] = Field(default_factory=list, max_length=1000)


class ActionRule(Model):
    allow: Allow | None = None  # narrows the source's list for this action (None: the source's)


class ActionSettings(Model):
    """`actions:` of a source: `allow` for every action, and per action (`confirm: {allow: ...}`) a narrower
    list. Off until configured: nobody may act from Slack. An action that spends money (Wordy's pay) is off
    unless named here. The console, the CLI and email links act for whoever holds the admin token or the link."""

    model_config = ConfigDict(extra="allow", frozen=True)

    allow: Allow = Field(default_factory=Allow)

    @model_validator(mode="after")
    def _rules_valid(self) -> ActionSettings:
        self.rules()  # a malformed `confirm: {...}` fails the config, not a click
        return self

    def rules(self) -> dict[str, ActionRule]:
        """The per-action entries (`confirm:`, `pay:`), validated."""
        return {name: ActionRule.model_validate(value or {}) for name, value in (self.model_extra or {}).items()}

    def enabled(self, action: Action) -> bool:
        """Someone may take it from Slack (a link-only action: always)."""
        if action.perform is None:
            return True
        rule = self.rules().get(action.name)
        if action.spends_money and rule is None:
            return False
        allow = rule.allow if rule is not None and rule.allow is not None else self.allow
        return bool(allow.slack_users or allow.slack_channels)

    def permits(self, action: Action, user: str, channel: str | None, same_workspace: bool) -> bool:
        rule = self.rules().get(action.name)
        if action.spends_money and rule is None:
            return False
        allow = rule.allow if rule is not None and rule.allow is not None else self.allow
        if user in allow.slack_users:
            return True
        return same_workspace and channel is not None and channel in allow.slack_channels


class SourceSettings(Model):
    """A source in workhooks.yaml; each platform's settings model extends this."""

    platform: str
    timeout: float = Field(default=15.0, gt=0, le=120)
    actions: ActionSettings = Field(default_factory=ActionSettings)

    def secrets(self) -> list[str]:
        """Every credential this source holds, for redaction (what may never be stored or shown)."""
        return [value.get_secret_value() for value in self._secret_values()]

    def credentials(self) -> list[str]:
        """What a callback to this source may present as its credential; none unless the platform says."""
        return []

    def _secret_values(self) -> list[SecretStr]:
        found: list[SecretStr] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                found.append(value)
            elif isinstance(value, list):
                found += [item for item in value if isinstance(item, SecretStr)]
        return found

    def interval(self) -> int | None:
        """Seconds between polls of this source; None when it is never polled."""
        return None

    def balance_threshold(self) -> tuple[Decimal, int] | None:
        """(announce a balance below this, read it every so many seconds); None: the balance is not watched."""
        return None


class PullSettings(SourceSettings):
    """A platform without callbacks: workers poll its API every `poll_interval` seconds."""

    poll_interval: int = Field(default=60, ge=1, le=24 * 3600)
    announce_existing: bool = False  # first poll: announce what exists already, or only record it

    def interval(self) -> int | None:
        return self.poll_interval


class CallbackSettings(SourceSettings):
    """A platform that calls us back; `reconcile_interval` polls its API for callbacks that never came."""

    reconcile_interval: int | None = Field(default=None, ge=1, le=24 * 3600)

    def interval(self) -> int | None:
        return self.reconcile_interval


@dataclass(frozen=True, slots=True)
class CallbackSource:
    """How a platform's callbacks are authenticated and read; every function here is pure.

    ``path_token``: the secret is the last segment of the callback URL (POST /hooks/<name>/<token>).
    ``api_key``: POST /hooks/<name>, the key in an X-API-Key header and/or in the body
    (``decode`` then ``body_key`` find it before ``to_callback`` reads the rest).
    """

    auth: AuthStyle
    parse: Callable[[bytes, str | None], Callback]
    decode: Callable[[bytes, str | None], dict[str, Any]]
    to_callback: Callable[[dict[str, Any]], Callback]
    body_key: Callable[[dict[str, Any]], str | None] = lambda document: None
    from_headers: Callable[[Mapping[str, str]], dict[str, Any]] = lambda headers: {}  # more data, from headers
    summary: str = ""
    body_schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # content type -> JSON Schema


@dataclass(frozen=True, slots=True)
class Vanished:
    """What a poller learned about known subjects missing from a complete listing."""

    callbacks: list[Callback] = field(default_factory=list)  # what to announce
    forget: list[str] = field(default_factory=list)  # keys no longer to track (closed, removed)


def _keep_tracking(settings: Any, api: ApiClient, gone: list[Item]) -> Vanished:
    return Vanished()  # nothing to say yet: look again at the next poll


def _current(state: State | None) -> Item | None:
    """The snapshot a poller compares with: the entity as last seen, unless it was removed."""
    return state.get("current") if state and not state.get("removed") else None


@dataclass(frozen=True, slots=True)
class Poller:
    """Reading a platform's API: I/O in ``client``/``fetch``/``enrich``, the rest pure."""

    entity: str  # the key of the item in an event's data, and the subject's prefix: order/<key>
    client: Callable[[Any], ApiClient]
    fetch: Callable[[Any, ApiClient], list[Item]]
    key: Callable[[Item], str]
    snapshot: Callable[[Item], Item]
    changes: Callable[[Item | None, Item], list[Callback]]
    # I/O allowed: learn what became of known subjects a complete listing no longer shows
    vanished: Callable[[Any, ApiClient, list[Item]], Vanished] = _keep_tracking
    previous: Callable[[State | None], Item | None] = _current
    initial_state: Callable[[Item], State] | None = None  # default: {"current": snapshot(item)}
    enrich: Callable[[Any, ApiClient, Item], None] | None = None  # extra reads for an item seen for the first time
    announce_new: bool = True  # False: a subject first seen by a poll is recorded, not announced
    # What of the last snapshot a new one keeps (parts a poll did not read this time)
    carry: Callable[[Item | None, Item], Item] = lambda previous, current: current
    # The item's deadline (Unix seconds) as the listing shows it, read on every poll; None: it has none
    due: Callable[[Item], float | None] | None = None


@dataclass(frozen=True, slots=True)
class Presenter:
    """What a person reads about this platform's events."""

    name: str  # as people write it: "Shared Workforce"
    defaults: Mapping[str, Template]  # event type -> default title/body
    link: Callable[[Event], str | None] = lambda event: None
    context: Callable[[Event], dict[str, Any]] = lambda event: {}  # extra template variables


@dataclass(frozen=True, slots=True)
class Samples:
    """Sample callbacks, as the platform really posts them, for `workhooks send`."""

    kinds: tuple[str, ...]
    body: Callable[[str, int], tuple[str, bytes]]  # (kind, subject id) -> (content type, body)
    request: Callable[[str, Any], tuple[str, dict[str, str], str]]  # (name, settings) -> (path, headers, shown)


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What confirming a callback learned: ``actual`` the status the platform shows when it refuses the
    callback (None: it agrees); ``facts`` kept in the subject's state all the same (``due``: a deadline)."""

    actual: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a person may do to a subject through its platform's API.

    ``applies``: on the subject's state now. ``perform`` (I/O): (settings, subject, state, text) -> Outcome; None for
    a link-only action (``link`` gives the address). ``ask``: the text it needs, as a label (the reason
    for a rejection), asked in a Slack modal or a form. ``confirm``: the question a destructive action asks
    first. ``once``: a transition, applied at most once per stay of the subject (a double click, a resend
    of the click, is the same action); False: each request is its own (two replies are two messages).
    ``retry_safe``: repeating it after an unknown outcome cannot do harm (closing a closed task).
    """

    name: str
    label: str
    applies: Callable[[State], bool]
    perform: Callable[[Any, str, State, str | None], Outcome] | None = None
    ask: str | None = None
    confirm: str | None = None
    spends_money: bool = False
    once: bool = True
    retry_safe: bool = False
    style: Literal["primary", "danger"] | None = None
    link: Callable[[Any, str, State], str | None] | None = None
    usable: Callable[[Any], bool] = lambda settings: True  # the source's settings allow it (an API key is set)


def _never_refuses(settings: Any, event: Event) -> Confirmed | None:
    return None


def _cannot_tell(settings: Any, event: Event) -> list[str] | None:
    return None


@dataclass(frozen=True, slots=True)
class Platform:
    name: str  # the `platform:` value in workhooks.yaml, and the prefix of its event types
    settings: type[SourceSettings]
    event_types: tuple[str, ...]
    presenter: Presenter
    appliers: Mapping[str, Applier]
    status_phases: Mapping[str, Phase] = field(default_factory=dict)  # a subject's status -> its phase
    callback: CallbackSource | None = None
    poller: Poller | None = None
    samples: Samples | None = None
    # Before a callback is trusted: None (or Confirmed without ``actual``) when the platform agrees.
    confirm: Callable[[Any, Event], Confirmed | None] = _never_refuses
    # Which of the platform's own records (a conversation entry) an event may be, oldest first (I/O
    # allowed); None when it cannot tell. An event claims one no other event holds, else it is a resend.
    occurrences: Callable[[Any, Event], list[str] | None] = _cannot_tell
    # The account's balance (I/O), for sources whose settings watch it (balance_threshold).
    balance: Callable[[Any], Decimal] | None = None
    # What people may do to its subjects (action name -> Action), in the order buttons show them.
    actions: Mapping[str, Action] = field(default_factory=dict)

    def actions_for(self, state: State | None, settings: Any) -> list[Action]:
        """The actions that apply to a subject in ``state`` now, that ``settings`` can carry out (an API key),
        and that it turned on (one that spends money only when named under ``actions``)."""
        if state is None:
            return []
        named = settings.actions.rules()
        return [
            action
            for action in self.actions.values()
            if action.usable(settings)
            and not (action.spends_money and action.name not in named)
            and action.applies(state)
        ]

    @property
    def kind(self) -> str:
        return "callback" if self.callback is not None else "pull"


def polled_applier(entity: str) -> Applier:
    """A change seen by a poller: keep the entity as last seen, the snapshot pollers compare with."""

    def apply(state: State, event: Event) -> State:
        if entity in event.data:
            state["current"] = event.data[entity]
        state["removed"] = event.type.endswith(".removed")
        if "status" in event.data:
            history = state.setdefault("history", [])
            history.append({"event_id": event.id, "from": event.data.get("previous_status"),
                            "to": event.data["status"], "at": event.time})  # fmt: skip
        return state

    return apply
