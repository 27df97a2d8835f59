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

import logging
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from chatgate.engines.upstream import UpstreamEndpoint, UpstreamResponse
from chatgate.errors import ChatgateError
from chatgate.front import sse
from chatgate.front.disconnect import CLIENT_CLOSED, ClientGone, unless_disconnected
from chatgate.front.metrics import Metrics

log = logging.getLogger("chatgate.upstream")


async def relay_chat(endpoint: UpstreamEndpoint, request: Request, raw: bytes, body: dict[str, Any]) -> Response:
    if not body.get("model") and endpoint.default_model:
        raw = msgspec.json.encode({**body, "model": endpoint.default_model})
    metrics: Metrics = request.app.state.chatgate.metrics
    try:
        # One race against the client leaving covers both the wait and a JSON body's read.
        upstream, content = await unless_disconnected(
            request.receive, _exchange(endpoint, raw, metrics), discard=_close
        )
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    if content is None:
        return RelayStream(upstream, metrics)
    return Response(content, status_code=upstream.status, media_type=upstream.media_type)


async def _exchange(endpoint: UpstreamEndpoint, raw: bytes, metrics: Metrics) -> tuple[UpstreamResponse, bytes | None]:
    """The upstream's answer: open, for a stream; read and closed, for a JSON body."""
    upstream = await endpoint.open(raw)
    if upstream.is_stream:
        return upstream, None
    try:
        return upstream, await upstream.read()
    finally:
        await upstream.aclose()
        _record(metrics, upstream)


def _record(metrics: Metrics, upstream: UpstreamResponse) -> None:
    if upstream.usage is not None:
        metrics.record_tokens(f"endpoints/{upstream.endpoint_id}", *upstream.usage)


async def _close(result: tuple[UpstreamResponse, bytes | None]) -> None:
    await result[0].aclose()


class RelayStream(Response):
    """An upstream SSE stream relayed as it arrives; ends the upstream when the client leaves."""

    def __init__(self, upstream: UpstreamResponse, metrics: Metrics) -> None:
        self.upstream = upstream
        self.metrics = metrics
        self.status_code = upstream.status
        self.media_type = upstream.media_type
        self.background = None
        self.init_headers(sse.HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await unless_disconnected(receive, self._relay(send))
        except (ClientGone, OSError):
            pass  # nobody left to tell; closing the upstream below is all there is to do
        finally:
            await self.upstream.aclose()
            _record(self.metrics, self.upstream)

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for piece in self.upstream.events():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        except ChatgateError as err:
            log.warning("endpoint=%s stream failed: %s", self.upstream.endpoint_id, err.message)
            await send({"type": "http.response.body", "body": sse.encode_error(err), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
