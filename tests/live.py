"""A real chatgate on a loopback port, for end-to-end tests.

``LiveServer(settings)`` serves ``build_app(settings)`` with uvicorn on a background thread
(``tests.serve.AppServer``); ``run_cli(...)`` runs the real ``chatgate`` command in a
subprocess, ``CliServer`` its ``serve``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from chatgate.config import Settings
from chatgate.engines.base import ModelServer
from chatgate.engines.local.engine import LocalEngine
from chatgate.front.app import build_app
from tests.serve import AppServer, free_port

SRC = Path(__file__).resolve().parents[1] / "src"


class LiveServer(AppServer):
    """chatgate for ``settings``; ``local`` is its local engine (built from the settings
    unless given), which the test holds to look at what it did."""

    def __init__(self, settings: Settings, *, local: ModelServer | None = None) -> None:
        self.settings = settings
        self.local = LocalEngine.from_settings(settings) if local is None else local
        super().__init__(build_app(settings, local=self.local), settings=settings.server)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a ``chatgate`` subprocess: this checkout's sources first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATGATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatgate", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


class CliServer:
    """``chatgate serve`` as a user runs it, in a subprocess. What it prints is read as it comes
    (a pipe nobody reads fills up, and the server would block on its next log line) and is
    ``output`` once it has stopped."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = ["serve", "--port", str(self.port), *args]
        self._env = env
        self.proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._lines.append(line)

    def __enter__(self) -> CliServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatgate", *self._args],
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="chatgate-output", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chatgate exited: {self.printed()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("chatgate serve did not become ready")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None and self._reader is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.output = self.printed()

    def printed(self) -> str:
        """What the server has printed: all of it once its process has ended."""
        if self.proc is not None and self.proc.poll() is not None and self._reader is not None:
            self._reader.join(timeout=10)  # the pipe ends with the process
        return "".join(self._lines)
