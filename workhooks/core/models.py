"""The base of every settings model, and the checks that credentials share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

MIN_TOKEN_LENGTH = 16
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value().strip()) < MIN_TOKEN_LENGTH:  # blanks guess no better than nothing
        raise ValueError(
            f"must be at least {MIN_TOKEN_LENGTH} characters "
            '(python3 -c "import secrets; print(secrets.token_urlsafe(24))")'
        )
    return value


def _long_key(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value().strip()) < MIN_TOKEN_LENGTH:
        raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters (a key this short could be guessed)")
    return value


Token = Annotated[SecretStr, AfterValidator(_long_enough)]  # a capability token: long enough not to be guessed
# A key a callback platform issued (it may authenticate callbacks to us): as long as a token.
Key = Annotated[SecretStr, AfterValidator(_long_key)]


def one_or_more(single: SecretStr | None, many: list[SecretStr], names: str) -> None:
    if single is None and not many:
        raise ValueError(f"set {names}")
