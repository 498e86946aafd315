"""JSON answers rendered by orjson: the receiver's every answer is one, so the stdlib encoder's cost was per request."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except (TypeError, orjson.JSONEncodeError):  # an int past 64 bits, a lone surrogate: as before
            return super().render(content)
