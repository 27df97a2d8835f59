"""The playground page: static files shipped in the package, served under a strict CSP.

The page is a client of the public API (the model listings and chat completions); it has no
route of its own beyond its files. Every asset comes from chatgate (``default-src 'self'``, no
inline script or style), so nothing outside this server runs in the page that holds a key.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ASSETS = Path(__file__).with_name("playground")
PATH = "/playground"

HEADERS = {
    "content-security-policy": "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class _SecureHeaders:
    """Adds ``HEADERS`` to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _home(request: object) -> RedirectResponse:
    return RedirectResponse(PATH + "/", status_code=307)


def routes() -> list[BaseRoute]:
    """``/`` → the playground; ``/playground/`` serves ``index.html`` and its modules."""
    return [
        Route("/", _home, methods=["GET", "HEAD"]),
        Mount(PATH, app=_SecureHeaders(StaticFiles(directory=ASSETS, html=True)), name="playground"),
    ]
