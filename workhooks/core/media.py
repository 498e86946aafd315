"""Content-Type handling and bounded readers shared by the platform parsers.

Whatever a sender posts, these raise ``ParseError`` (a 400) and nothing else: a number too long
for ``int()``, a lone surrogate that could not be stored, NaN, nesting past a bound.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any
from urllib.parse import parse_qs

import orjson

from workhooks.core.exceptions import ParseError

MAX_JSON_DEPTH = 64
MAX_FORM_FIELDS = 1000
MAX_ID_DIGITS = 20  # an id in ASCII digits: 2**64 has 20
_SURROGATE = re.compile("[\ud800-\udfff]")
# orjson reads an integer past 64 bits as a float; a run of 19 digits anywhere sends the body to json instead
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; missing -> ``""``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _no_surrogate(text: str, where: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise ParseError(f"a JSON {where} holds a lone surrogate (\\ud800-\\udfff): not Unicode text")


def _check(value: Any) -> None:
    """Refuse what json.loads accepts but nothing downstream can take: nesting past the bound,
    lone surrogates (UTF-8 cannot encode them) and non-finite numbers. One pass, level by level."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        below: list[Any] = []
        for item in level:
            kind = type(item)  # json.loads makes exact types; `is` is 3x faster than isinstance here
            if kind is str:
                _no_surrogate(item, "string")
            elif kind is dict:
                for key in item:
                    _no_surrogate(key, "key")
                below.extend(item.values())
            elif kind is list:
                below.extend(item)
            elif kind is float and not math.isfinite(item):
                raise ParseError("a JSON number is too large to be a finite number")
        level = below


def _constant(name: str) -> Any:
    raise ParseError(f"{name} is not JSON")


def load_json(body: bytes) -> Any:
    """The document, or ParseError. orjson reads it (several times faster); whatever orjson refuses or
    might read differently (a long number, a BOM, UTF-16, a lone surrogate, NaN) is read by the standard
    library as before, so what is accepted and every error's message stay the same."""
    if not _LONG_DIGITS.search(body):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:  # orjson refuses lone surrogates and non-finite numbers itself: only the depth is left to bound,
            if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:  # and it cannot pass more brackets than it has
                _check(value)
            return value
    try:
        value = json.loads(body, parse_constant=_constant)
    except UnicodeDecodeError:
        raise ParseError("body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:  # int() of a number past Python's digit limit
        raise ParseError(f"a JSON number has more than {sys.get_int_max_str_digits()} digits") from None
    _check(value)
    return value


def load_form(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("form body is not UTF-8 text") from None
    try:  # percent-escapes that are not UTF-8 become U+FFFD: the result is always encodable
        return parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:
        raise ParseError(f"body is not a valid form: {exc}") from None


def ascii_integer(text: str, max_digits: int = MAX_ID_DIGITS, signed: bool = False) -> int | None:
    """``text`` (spaces around allowed) as an int when it is 1 to ``max_digits`` ASCII digits, optionally
    after a minus sign; else None. ``str.isdigit`` takes "²" and "١٢", and ``int()`` of 5,000 digits raises."""
    text = text.strip()
    digits = text[1:] if signed and text.startswith("-") else text
    if not 0 < len(digits) <= max_digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(text)
