"""A Wordy source in workhooks.yaml."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AnyHttpUrl, Field, model_validator

from workhooks.core.models import Key, Token, one_or_more
from workhooks.platforms.base import CallbackSettings


class WordySettings(CallbackSettings):
    """Wordy calls ``POST /hooks/<name>/<token>``: the token in the path is the credential.

    ``tokens`` lists several at once, to rotate without downtime: add the new one, move
    Wordy's callback_url over, then remove the old one.
    """

    platform: Literal["wordy"]
    token: Token | None = None
    tokens: list[Token] = Field(default_factory=list)
    api_key: Key | None = None  # Wordy API key: enables confirm and reconcile_interval; never a callback credential
    base_url: AnyHttpUrl = AnyHttpUrl("https://wordy.com/api/1.0")  # sandbox: https://sandbox.wordy.com/api/1.0
    confirm: bool = False  # check each status callback against GET /job/{id}/ before trusting it
    # Reconciliation also reads this many open jobs' conversations per poll (taking turns; 0: none)
    # and announces the messages whose callbacks never came.
    conversations_per_poll: int = Field(default=50, ge=0, le=10_000)
    # GET /account/ every account_interval seconds: a balance below this (in the account's currency)
    # is announced as wordy.account.balance_low, once per crossing. None: the balance is not read.
    balance_below: Decimal | None = Field(default=None, ge=0)
    account_interval: int = Field(default=300, ge=1, le=24 * 3600)

    def balance_threshold(self) -> tuple[Decimal, int] | None:
        return None if self.balance_below is None else (self.balance_below, self.account_interval)

    def credentials(self) -> list[str]:
        """Only the callback tokens open the callback URL: the API key is for calling Wordy."""
        return [value.get_secret_value() for value in [*([self.token] if self.token else []), *self.tokens]]

    @model_validator(mode="after")
    def _has_one(self) -> WordySettings:
        one_or_more(self.token, self.tokens, "token (or tokens: [...] while rotating)")
        if (self.confirm or self.reconcile_interval or self.balance_below is not None) and self.api_key is None:
            raise ValueError("confirm, reconcile_interval and balance_below need api_key (the Wordy API key)")
        return self
