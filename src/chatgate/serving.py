"""uvicorn, configured against slow and greedy clients (``[server]``'s timeouts and limits).

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``), connections at once
(``limit_concurrency``: a 503 beyond it) and, with h11, the size of a request head; it has no
deadline for the request head itself, so a client sending a header a byte at a time
(slowloris) would hold its connection forever. ``HeadDeadline`` adds that deadline, and a size
cap on the head, to either HTTP implementation: a connection that has not sent a complete
request line and headers ``header_timeout`` seconds after it opened (or after its previous
response) is closed; a head larger than ``max_header_bytes`` gets a 431. The body has its own
deadline in the application (``front/body.py``: a 408).

``Coalesced`` makes what the protocol writes within one step of the event loop leave in one
``send``: uvicorn writes a response's status line and headers, then its body, each with its
own system call; on a small answer the second call costs as much as the rest of the response.

``Server`` is uvicorn's server with a drain step: on SIGTERM (or Ctrl-C), before uvicorn waits
for the connections to finish, it tells the application (``on_shutdown``), which gives every
request in flight ``shutdown_timeout`` seconds and then ends it with an error
(``front/deadline.py``); uvicorn's own cancellation, a little later, is only a backstop.

Once started, it tunes Python's cyclic garbage collector for serving (``tune_gc``): a request
allocates thousands of short-lived objects, so with the defaults the collector ran every few
requests and each full pass walked everything start-up had built. It cost about a tenth of a
relayed request's CPU (``bench/README.md``).
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from chatgate.config import ServerSettings

HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class Coalesced:
    """A transport whose writes are joined and sent once, at the end of the event-loop step
    they were made in (a stream's pieces are not held back: every step flushes)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self._flush)
        else:
            self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport's interface, as it is
        return getattr(self._transport, name)


class HeadDeadline:
    """Mixed into a uvicorn HTTP protocol class (which sets ``cycle`` when a head is parsed)."""

    header_timeout: float
    max_header_bytes: int
    transport: Any
    cycle: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(Coalesced(transport, asyncio.get_running_loop()))  # type: ignore[misc]
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._seen_cycle = self.cycle
        self._head_bytes = 0
        self._head_timer = asyncio.get_running_loop().call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        waiting = self._head_timer is not None
        super().data_received(data)  # type: ignore[misc]
        if not waiting:
            return
        if self.cycle is not None and self.cycle is not self._seen_cycle:
            self._seen_cycle = self.cycle
            self._disarm()
            return
        self._head_bytes += len(data)
        if self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._disarm()
            self.transport.write(HEADERS_TOO_LARGE)
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        # A pipelined head may already be parsed (and its request started): then no deadline.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._disarm()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


def _protocol(settings: ServerSettings) -> type:
    base: type
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # httptools missing: uvicorn's h11 implementation
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    return type(
        "ChatgateHTTPProtocol",
        (HeadDeadline, base),
        {"header_timeout": settings.header_timeout, "max_header_bytes": settings.max_header_bytes},
    )


# Seconds uvicorn waits beyond ``shutdown_timeout`` before it cancels what still runs.
_BACKSTOP = 2.0
# The collector's thresholds while serving (Python's defaults: 700, 10, 10): the youngest
# generation every 10,000 net allocations, the older ones after 20 collections of the one below.
GC_THRESHOLDS = (10_000, 20, 20)


def tune_gc() -> None:
    """Move what exists now (modules, the application, loaded models' tables) out of the
    collector's reach, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        tune_gc()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)


def uvicorn_config(app: Any, settings: ServerSettings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration for ``app``; ``options`` (host, port, log level, ...) as uvicorn takes them."""
    options.setdefault("timeout_graceful_shutdown", settings.shutdown_timeout + _BACKSTOP)  # a float works
    return uvicorn.Config(
        app,
        http=_protocol(settings),
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]  # a float works: call_later
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        **options,
    )
