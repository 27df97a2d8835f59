"""An ASGI app in this process, without sockets: its lifespan, and an httpx transport that
streams.

``httpx.ASGITransport`` is what the fast tests use; it collects a whole response before
returning it and says ``http.disconnect`` only after the app has finished, so a client that
goes away in the middle cannot be shown through it. ``StreamingTransport`` returns the
response as soon as its headers are sent, streams the body as the app sends it, and makes
closing the response (or cancelling the request) a disconnect: the app's next ``receive()``
answers ``http.disconnect`` and its later sends fail, as under uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """The app's start-up on entry, its shutdown on exit (the ASGI lifespan protocol)."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, to_app.get, from_app.put)
    )
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task


class StreamingTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "root_path": "",
            "server": (request.url.host, request.url.port or 80),
            "client": ("127.0.0.1", 123),
        }
        gone = asyncio.Event()
        head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = asyncio.get_running_loop().create_future()
        pieces: asyncio.Queue[bytes | None] = asyncio.Queue()
        unread = True

        async def receive() -> dict[str, Any]:
            nonlocal unread
            if unread:
                unread = False
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if gone.is_set():
                raise OSError("the client disconnected")
            if message["type"] == "http.response.start":
                head.set_result((message["status"], message.get("headers", [])))
            elif message["type"] == "http.response.body":
                pieces.put_nowait(message.get("body", b""))
                if not message.get("more_body", False):
                    pieces.put_nowait(None)

        def ended(task: asyncio.Task[None]) -> None:
            pieces.put_nowait(None)
            if not head.done() and not gone.is_set():  # after a hang-up nobody waits for it
                error = task.exception() if not task.cancelled() else None
                head.set_exception(error or RuntimeError("the app sent no response"))

        task = asyncio.ensure_future(self.app(scope, receive, send))
        task.add_done_callback(ended)
        try:
            status, headers = await asyncio.shield(head)
        except BaseException:
            gone.set()
            await asyncio.gather(task, return_exceptions=True)
            raise
        return httpx.Response(status, headers=headers, stream=_Body(pieces, gone, task))


class _Body(httpx.AsyncByteStream):
    def __init__(self, pieces: asyncio.Queue[bytes | None], gone: asyncio.Event, task: asyncio.Task[None]) -> None:
        self._pieces = pieces
        self._gone = gone
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (piece := await self._pieces.get()) is not None:
            yield piece

    async def aclose(self) -> None:
        """The client hangs up: whatever the app still does sees a disconnect."""
        self._gone.set()
        await asyncio.gather(self._task, return_exceptions=True)
