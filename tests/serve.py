"""Servers on loopback for tests, one way of running them.

- ``LoopThread``: an asyncio event loop on a daemon thread; ``call(coro)`` runs a coroutine
  there and waits for it. Servers the tests write themselves (a raw HTTP upstream) run on it.
- ``AppServer(app)``: uvicorn serving an ASGI app on a ``LoopThread``, bound to 127.0.0.1 on
  a free port, with the app's lifespan. chatgate itself (``tests.live.LiveServer``) and the
  fake Gemini server run this way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any, Literal, Self, TypeVar

import uvicorn

from chatgate.config import ServerSettings
from chatgate.serving import uvicorn_config

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LoopThread:
    """An event loop running on its own thread until ``stop()``."""

    def __init__(self, name: str = "test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return self.submit(coro).result(timeout=timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class AppServer:
    """``app`` under uvicorn on 127.0.0.1 and a free port, on a background loop."""

    def __init__(
        self, app: Any, *, lifespan: Literal["on", "off"] = "on", settings: ServerSettings | None = None
    ) -> None:
        """``settings``: serve as ``chatgate serve`` does, with its timeouts and limits."""
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {"log_level": "warning", "lifespan": lifespan, "timeout_graceful_shutdown": 2}
        config = uvicorn.Config(app, **options) if settings is None else uvicorn_config(app, settings, **options)
        self._server = uvicorn.Server(config)
        self._loop = LoopThread("uvicorn")
        self._serving: concurrent.futures.Future[None] | None = None

    def __enter__(self) -> Self:
        self._loop.start()
        self._serving = self._loop.submit(self._server.serve(sockets=[self._sock]))
        deadline = time.monotonic() + 120  # loading a model takes a while; only a hang fails
        while not self._server.started:
            if self._serving.done() or time.monotonic() > deadline:
                self._loop.stop()
                raise RuntimeError(
                    f"the server did not start: {self._serving.exception() if self._serving.done() else 'timeout'}"
                )
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        assert self._serving is not None
        try:
            self._serving.result(timeout=30)
        finally:
            self._loop.stop()
            self._sock.close()
