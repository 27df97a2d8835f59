"""A real chatgate on a loopback port, for end-to-end tests.

``LiveServer(settings)`` runs uvicorn with ``build_app(settings)`` on a background thread
(so tests can look at the engine's state) on a socket bound to 127.0.0.1 with a free port;
``run_cli(...)`` runs the real ``chatgate`` command in a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn

from chatgate.config import Settings
from chatgate.front.app import build_app
from chatgate.serving import uvicorn_config

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, settings: Settings, *, local: Any = None) -> None:
        self.settings = settings
        self.app = build_app(settings, local=local)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn_config(self.app, settings.server, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    @property
    def state(self) -> Any:
        return self.app.state.chatgate

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 120
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("chatgate did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a ``chatgate`` subprocess: this checkout's sources first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatgate", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


class CliServer:
    """``chatgate serve`` as a user runs it, in a subprocess."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = ["serve", "--port", str(self.port), *args]
        self._env = env
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> CliServer:
        self.proc = subprocess.Popen([sys.executable, "-m", "chatgate", *self._args], env=self._env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chatgate exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("chatgate serve did not become ready")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.output = self.proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output = self.proc.communicate()[0]
