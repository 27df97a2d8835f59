"""The quota check's cost per request: no limits (the baseline), limits kept in memory, and
limits kept in a Redis on loopback (a ``redis-server`` this script starts, if installed).

chatgate's whole non-streaming path runs in-process over raw ASGI with an engine that answers
at once (``gateway.py``'s), one request after another, each charged to a request, a token and
a concurrency limit that never refuses. CPU is this process's (Redis's own is not counted);
wall time includes the round trips to Redis.

    python bench/quotas.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _asgi import call
from _requests import typical_body
from gateway import InstantEngine

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from chatgate import config  # noqa: E402
from chatgate.front.app import build_app  # noqa: E402
from tests.asgi import running  # noqa: E402

BODY = typical_body("bench-model")
KEY = "bench-key"
LIMITS = {"default": {"requests_per_minute": 10**9, "tokens_per_minute": 10**12, "concurrent": 10**6}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def measure(settings: config.Settings, n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per request."""
    app = build_app(settings, local=InstantEngine())
    headers = [(b"authorization", f"Bearer {KEY}".encode())]
    async with running(app):
        for _ in range(200):  # warm up
            status, answer = await call(app, "POST", "/v1/chat/completions", BODY, headers)
            assert status == 200, answer
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            await call(app, "POST", "/v1/chat/completions", BODY, headers)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / n * 1e6, wall / n * 1e6


async def main(n: int) -> None:
    redis = start_redis()
    try:
        with tempfile.TemporaryDirectory() as state:

            def settings(**sections: Any) -> config.Settings:
                return config.load(
                    None, environ={}, overrides={"auth": {"state_dir": state, "api_keys": [KEY]}, **sections}
                )

            rows = [
                ("no limits (baseline)", await measure(settings(), n)),
                ("limits in memory", await measure(settings(limits=LIMITS), n)),
            ]
            if redis is not None:
                rows.append(
                    (
                        "limits in Redis (loopback)",
                        await measure(settings(limits=LIMITS, state={"redis_url": redis[1]}), n),
                    )
                )
    finally:
        if redis is not None:
            redis[0].kill()
            redis[0].wait()
    base_cpu, base_wall = rows[0][1]
    print(f"{'':30s}{'CPU µs/request':>16s}{'':14s}{'wall µs/request':>16s}")
    for name, (cpu, wall) in rows:
        print(f"{name:30s}{cpu:16.1f} ratio {cpu / base_cpu:5.2f}x{wall:16.1f} ratio {wall / base_wall:5.2f}x")
    if redis is None:
        print("(redis-server is not installed: no Redis row)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(main(parser.parse_args().requests))
