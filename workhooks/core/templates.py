"""The title/body of what a person reads: a route's own template, or a platform's default per event type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


class Template(BaseModel):
    """Sandboxed Jinja2 for the title/body of human-facing sinks; unset parts use the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = None
    body: str | None = None

    @field_validator("title", "body")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            from jinja2 import TemplateSyntaxError
            from jinja2.sandbox import SandboxedEnvironment

            try:
                SandboxedEnvironment().parse(value)
            except TemplateSyntaxError as error:
                raise ValueError(f"template error on line {error.lineno}: {error.message}") from None
        return value
