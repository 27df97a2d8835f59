"""The self-deployed endpoint route: relay a chat request to an upstream and its answer back.

The body goes out as the client sent it (re-encoded only to fill ``model`` from the
endpoint's default when it is absent, null or empty); the answer comes back as the upstream
sent it: a JSON body, or SSE bytes chunk by chunk as they arrive. Whether the answer is a
stream is the upstream's to say (its content type), so a client's odd ``stream`` value never
turns into a broken relay.

Failures before the answer starts are raised (``chatgate.errors``) for the front to render.
A failure in the middle of a stream becomes a final ``data: {"error": ...}`` event, then the
stream closes. A client that goes away, while waiting or while streaming, ends the upstream
request at once: both phases race the work against the ASGI ``http.disconnect`` message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from chatgate.engines.upstream import UpstreamEndpoint, UpstreamResponse
from chatgate.errors import ChatgateError
from chatgate.front import sse

log = logging.getLogger("chatgate.upstream")

T = TypeVar("T")

# nginx's "client closed request": what the access log shows when the client left first.
CLIENT_CLOSED = 499


async def relay_chat(endpoint: UpstreamEndpoint, request: Request, raw: bytes, body: dict[str, Any]) -> Response:
    if not body.get("model") and endpoint.default_model:
        raw = msgspec.json.encode({**body, "model": endpoint.default_model})
    try:
        upstream = await _unless_disconnected(request.receive, endpoint.open(raw))
    except _ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    if upstream.is_stream:
        return RelayStream(upstream)
    try:
        content = await _unless_disconnected(request.receive, upstream.read())
    except _ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    finally:
        await upstream.aclose()
    return Response(content, status_code=upstream.status, media_type=upstream.media_type)


class RelayStream(Response):
    """An upstream SSE stream relayed as it arrives; ends the upstream when the client leaves."""

    def __init__(self, upstream: UpstreamResponse) -> None:
        self.upstream = upstream
        self.status_code = upstream.status
        self.media_type = upstream.media_type
        self.background = None
        self.init_headers(sse.HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await _unless_disconnected(receive, self._relay(send))
        except (_ClientGone, OSError):
            pass  # nobody left to tell; closing the upstream below is all there is to do
        finally:
            await self.upstream.aclose()

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for piece in self.upstream.events():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        except ChatgateError as err:
            log.warning("endpoint=%s stream failed: %s", self.upstream.endpoint_id, err.message)
            await send({"type": "http.response.body", "body": sse.encode_error(err), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _ClientGone(Exception):
    """The client disconnected before the work was done."""


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ``_ClientGone``."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if watcher.done() and not watcher.cancelled():
            watcher.exception()  # a failing receive counts as a disconnect
        if not task.done():
            task.cancel()
            try:
                result = await task
            except asyncio.CancelledError:
                pass
            else:
                # Finished while being cancelled: close what it opened.
                if isinstance(result, UpstreamResponse):
                    await result.aclose()
    if task.cancelled():
        raise _ClientGone
    return task.result()
