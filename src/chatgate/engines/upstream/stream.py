"""One relayed answer: a JSON body or an SSE stream, passed on as bytes.

Stream pieces are cut only at event boundaries (a piece that ends inside an event is held
until the event is complete, so an error event after a failure never lands in the middle of
another), and are never decoded: token usage is found by scanning the bytes of the piece
that carries it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from chatgate.engines.http_errors import CLIENT_ERRORS, transport_error
from chatgate.engines.httpclient import HttpResponse

if TYPE_CHECKING:
    from chatgate.engines.upstream.replicas import Replica

log = logging.getLogger("chatgate.upstream")

_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")
_PROMPT = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')


def sniff_usage(data: bytes) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of the last usage object in ``data``, if any.

    A nested ``completion_tokens_details`` does not match: the key is followed by ``"``."""
    completions = _COMPLETION.findall(data)
    if not completions:
        return None
    prompts = _PROMPT.findall(data)
    return (int(prompts[-1]) if prompts else 0), int(completions[-1])


class UpstreamResponse:
    """An upstream's successful answer, held open until read or closed.

    ``is_stream`` tells an SSE stream (iterate ``events()``) from a JSON body (``read()``).
    Either way ``aclose()`` must follow: it ends the upstream request if it is still running
    and frees the replica's and the endpoint's slots (``on_close``). ``usage`` is filled as
    it goes by.
    """

    def __init__(
        self, endpoint_id: str, replica: Replica, response: HttpResponse, timeout: float, on_close: Callable[[], None]
    ) -> None:
        self.endpoint_id = endpoint_id
        self._replica = replica
        self._response = response
        self._timeout = timeout
        self._on_close = on_close
        self._started = time.monotonic()
        self._closed = False
        self._outcome = "ok"
        self.status = response.status
        self.media_type = response.headers.get("content-type", "application/json")
        self.is_stream = self.media_type.startswith("text/event-stream")
        self.usage: tuple[int, int] | None = None

    async def read(self) -> bytes:
        """The whole JSON body."""
        try:
            body = await self._response.read()
        except CLIENT_ERRORS as exc:
            self._outcome = type(exc).__name__
            raise transport_error(exc, self._replica.name, self._timeout, answering=True) from exc
        if b'"completion_tokens"' in body:
            self.usage = sniff_usage(body)
        return body

    async def events(self) -> AsyncIterator[bytes]:
        """The SSE bytes as they arrive, cut only at event boundaries. Failures are raised
        as chatgate errors."""
        pending = b""
        try:
            async for piece in self._response.chunks():
                if pending:
                    piece = pending + piece
                    pending = b""
                if not piece.endswith(_EVENT_ENDS):
                    cut = max(piece.rfind(end) + len(end) if end in piece else 0 for end in _EVENT_ENDS)
                    piece, pending = piece[:cut], piece[cut:]
                    if not piece:
                        continue
                if b'"completion_tokens"' in piece:
                    self.usage = sniff_usage(piece) or self.usage
                yield piece
        except CLIENT_ERRORS as exc:
            self._outcome = type(exc).__name__
            raise transport_error(exc, self._replica.name, self._timeout, answering=True) from exc
        if pending:
            yield pending

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._response.close()
        finally:
            self._on_close()
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "endpoint=%s upstream=%s status=%d outcome=%s seconds=%.3f usage=%s",
                    self.endpoint_id,
                    self._replica.label,
                    self.status,
                    self._outcome,
                    time.monotonic() - self._started,
                    self.usage,
                )
