"""Which ``Host`` names a request may carry: the defence against DNS rebinding.

A web page the user visits can make the browser send requests to ``127.0.0.1:8080`` under a
name it controls (DNS rebinding); with authentication off nothing else would stop it reading
the answers. So with auth off only loopback names are accepted unless ``[server]
allowed_hosts`` lists others; with auth on, any name unless the list is given. A refusal is
a 403 (``host_not_allowed``), as development servers that guard against rebinding answer.
The health probes stay open: they reveal nothing and orchestrators call them by pod address.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from chatgate.config import ServerSettings
from chatgate.errors import PermissionDenied
from chatgate.front.render import error_response

LOOPBACK = ("localhost", "127.0.0.1", "::1")
ANY = "*"
OPEN_PATHS = frozenset(("/healthz", "/readyz"))


def allowed_hosts(server: ServerSettings, auth_enabled: bool) -> frozenset[str] | None:
    """The names accepted, lower case without port; None for any."""
    if server.allowed_hosts is None:
        return None if auth_enabled else frozenset(LOOPBACK)
    names = frozenset(host_name(h) for h in server.allowed_hosts)
    return None if ANY in names else names


def host_name(host: str) -> str:
    """``Localhost:8080`` → ``localhost``; ``[::1]:8080`` → ``::1``; a trailing dot dropped."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


class HostCheckMiddleware:
    def __init__(self, app: ASGIApp, *, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allowed is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        if host is None or host_name(host) not in self.allowed:
            error = PermissionDenied(
                f"the Host {host!r} is not allowed here; add it to [server] allowed_hosts if it is yours",
                code="host_not_allowed",
            )
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)
