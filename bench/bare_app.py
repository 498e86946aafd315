"""The baseline: a bare Starlette endpoint answering 202, served exactly like the receiver."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def accept(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"id": "evt_0"}, status_code=202)


app = Starlette(
    routes=[
        Route("/hooks/{source}/{token}", accept, methods=["POST"]),  # Wordy's shape
        Route("/hooks/{source}", accept, methods=["POST"]),  # Shared Workforce's
    ]
)
