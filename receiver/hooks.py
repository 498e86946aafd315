"""The callbacks' own path: POST /hooks/<source>/<token> and POST /hooks/<source>, served as plain ASGI.

Nearly every request the receiver gets is one of these two. Through Starlette's stack (the exception
middleware, the router's matching, the per-route body limit, request_response, Request, JSONResponse)
the smallest endpoint cost about 49 µs a request on the benchmark machine (bare Starlette 12,800 req/s,
the same answer as plain ASGI 34,500 req/s, wrk on one core), a fifth of an acknowledgement. So
receiver/front.py sends these two shapes straight to their endpoint (``Hooks.route``), and an endpoint
does for itself the little Starlette did for them: the route on the scope (its template names the
request on its line), the body limit (413, as soon as a declared length is over it), a client gone
(499) and a body too slow (408, receiver/deadline.py). Any other method on these paths, and every other
path, is the router's (a /hooks/ path that is not a callback's is its catch-all 404, receiver/app.py).
The handlers (receiver/routes.py) read a ``Call`` and return an ``Answer``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.datastructures import Headers, State
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from receiver.deadline import BodyTimeoutError
from receiver.responses import JSONResponse


class BodyTooLargeError(Exception):
    """The request's body is (or says it is) over the route's limit."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What a handler answers: a status, a JSON object (or no body) and any extra headers."""

    status: int
    content: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        """The same answer as a Starlette response, for the routes that are Starlette's."""
        if self.content is None:
            return Response(status_code=self.status, headers=dict(self.headers))
        return JSONResponse(dict(self.content), status_code=self.status, headers=dict(self.headers))

    async def send(self, send: Send) -> None:
        """As ``response()`` would send it (the same bytes and headers), in two messages and nothing else."""
        body = b"" if self.content is None else _json(self.content)
        headers = [(b"content-length", b"%d" % len(body))]
        if self.content is not None:
            headers.append((b"content-type", b"application/json"))
        headers.extend((name.lower().encode("latin-1"), value.encode("latin-1"))
                       for name, value in self.headers.items())  # fmt: skip
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _json(content: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(content)
    except (TypeError, orjson.JSONEncodeError):  # an int past 64 bits, a lone surrogate: as JSONResponse does
        return bytes(JSONResponse(dict(content)).body)


class Call:
    """A callback request as a handler reads it: its path's parameters, headers, the app's state, its body."""

    __slots__ = ("_limit", "_receive", "headers", "params", "state")

    def __init__(self, scope: Scope, receive: Receive, limit: int) -> None:
        self.params: dict[str, str] = scope["path_params"]
        self.headers = Headers(scope=scope)
        self.state: State = scope["app"].state  # read by key: State.__getattr__ runs only after a failed lookup
        self._receive = receive
        self._limit = limit

    def declared_too_large(self) -> bool:
        length = self.headers.get("content-length")
        return length is not None and length.isascii() and length.isdigit() and int(length) > self._limit

    async def body(self) -> bytes:
        """The whole body, at most the route's limit (BodyTooLargeError past it); ClientDisconnect if the
        client went away first, BodyTimeoutError (receiver/deadline.py) if it was too slow."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise BodyTooLargeError()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


Handler = Callable[[Call], Awaitable[Answer]]
Refusal = Callable[[Exception], Answer]


class Endpoint:
    """One handler as an ASGI app. ``refused`` answers what reading the request raised (a body over the
    limit, a client gone, a deadline passed), as the app's exception handlers answer the other routes'."""

    def __init__(self, handler: Handler, limit: int, refused: Refusal) -> None:
        self.handler = handler
        self.limit = limit
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(scope, receive, self.limit)
        try:
            answer = self.refused(BodyTooLargeError()) if call.declared_too_large() else await self.handler(call)
        except (BodyTooLargeError, ClientDisconnect, BodyTimeoutError) as error:
            answer = self.refused(error)
        await answer.send(send)


class Hooks:
    """Which of ``routes`` (each an Endpoint's) a request is for, matched as the router would match it."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes: list[tuple[re.Pattern[str], Route, Endpoint]] = []
        for route in routes:
            assert isinstance(route.endpoint, Endpoint), route.path
            self.routes.append((route.path_regex, route, route.endpoint))

    def route(self, scope: Scope) -> Endpoint | None:
        """The endpoint of a POST to one of the routes, with ``route`` and ``path_params`` on the scope."""
        if scope["method"] != "POST":
            return None
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # as Starlette's router reads the path
            path = path[len(root) :]
        if not path.startswith("/hooks/"):
            return None
        for pattern, route, endpoint in self.routes:
            if (found := pattern.match(path)) is not None:
                scope["route"] = route
                scope["path_params"] = found.groupdict()
                return endpoint
        return None
