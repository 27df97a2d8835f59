"""Loopback servers for the upstream tests: a live chatgate, and upstreams the tests control.

- ``Gateway(settings)``: chatgate's real app (``build_app``, no local model), a
  ``tests.live.LiveServer``.
- ``Upstream(handler)``: a raw HTTP/1.1 server on its own event-loop thread
  (``tests.serve.LoopThread``); ``handler``
  gets each parsed request and a ``writer`` and answers however the test wants: canned
  OpenAI answers, HTML errors, slow first bytes, streams cut in the middle. Every request
  and every closed connection is recorded, so tests can see what the upstream saw.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chatgate import config
from chatgate.config import Settings
from chatgate.engines.local.engine import LocalEngine
from chatgate.engines.upstream import UpstreamEndpoint
from tests.live import LiveServer
from tests.serve import LoopThread

ROUTE = "/v1/projects/demo/locations/us-central1/endpoints/{}"


def settings(endpoints: dict[str, dict[str, Any]], **sections: Any) -> Settings:
    sections.setdefault("auth", {"enabled": False})
    return config.load(environ={}, overrides={"endpoints": endpoints, **sections})


def wait_until(predicate: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    """Poll until ``predicate()``; the deadline only stops a broken test from hanging."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


class Gateway(LiveServer):
    """A live chatgate serving only the configured upstream endpoints."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, local=LocalEngine([]))

    def base(self, endpoint_id: str) -> str:
        """The OpenAI SDK ``base_url`` for an endpoint, as on Vertex."""
        return self.url + ROUTE.format(endpoint_id)

    def endpoint(self, endpoint_id: str) -> UpstreamEndpoint:
        return self.app.state.chatgate.upstreams[endpoint_id]  # type: ignore[no-any-return]


# --- upstreams the tests control ----------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Upstream:
    """A raw HTTP/1.1 server on 127.0.0.1; ``handler`` answers each request."""

    handler: Handler
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    # Set when the peer closes a connection while a handler runs; watched only when asked,
    # since watching reads from the connection.
    watch_close: bool = False
    # Health probes and listings (GET) get a healthy answer unless the handler wants them.
    handle_gets: bool = False
    closed: threading.Event = field(default_factory=threading.Event)
    release: asyncio.Event | None = None  # handlers that hold wait on it

    def __post_init__(self) -> None:
        self._thread = LoopThread("upstream")
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def chats(self) -> list[Request]:
        """The requests that were not health probes or listings."""
        return [r for r in self.requests if r.method == "POST"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Upstream:
        self._thread.start()
        self._thread.call(self._start(), timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.call(self._stop(), timeout=10)
        self._thread.stop()

    def open_gate(self) -> None:
        """Let handlers waiting on ``self.release`` go on."""
        assert self.release is not None
        self._thread.loop.call_soon_threadsafe(self.release.set)

    async def _start(self) -> None:
        self.release = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            while not writer.is_closing():
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                # Watch for the peer closing while the handler works (disconnect tests).
                watcher = asyncio.create_task(_watch_eof(reader, self.closed)) if self.watch_close else None
                try:
                    if request.method == "GET" and not self.handle_gets:
                        await openai_stub(request, writer)
                    else:
                        await self.handler(request, writer)
                finally:
                    if watcher is not None:
                        watcher.cancel()
                if writer.is_closing():
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed.set()
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()


async def _watch_eof(reader: asyncio.StreamReader, closed: threading.Event) -> None:
    try:
        if await reader.read(1) == b"":
            closed.set()
    except ConnectionError:
        closed.set()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


# --- answers ----------------------------------------------------------------------------------


def completion(model: str = "stub-model", content: str = "Hello there.") -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def chunk(delta: dict[str, Any], finish: str | None = None, model: str = "stub-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


GOOD_STREAM = [
    sse(chunk({"role": "assistant", "content": ""})),
    sse(chunk({"content": "Hello"})),
    sse(chunk({"content": " there."})),
    sse(chunk({}, finish="stop")),
    b"data: [DONE]\n\n",
]


async def respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()


async def respond_json(writer: asyncio.StreamWriter, obj: Any, status: int = 200, **kw: Any) -> None:
    await respond(writer, status, json.dumps(obj).encode(), **kw)


async def start_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    await writer.drain()


async def send_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def end_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def openai_stub(request: Request, writer: asyncio.StreamWriter) -> None:
    """A well-behaved OpenAI-compatible server: a canned completion or stream."""
    if request.method == "GET":
        await respond_json(
            writer,
            {
                "object": "list",
                "data": [{"id": "stub-model", "object": "model", "created": 1700000000, "owned_by": "stub"}],
            },
        )
        return
    if request.json().get("stream") is True:
        await start_stream(writer)
        for event in GOOD_STREAM:
            await send_chunk(writer, event)
        await end_stream(writer)
    else:
        await respond_json(writer, completion())


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
