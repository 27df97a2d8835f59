"""Gateway CPU for relayed requests to a self-deployed endpoint (budgets: 300 µs per
non-streaming request, 30 µs per stream chunk), beside a baseline.

chatgate runs in its own process (uvicorn, ``build_app``, no local model) and relays to a
loopback stub upstream that runs in this process with the client; only the gateway
process's CPU time is counted (``/proc/<pid>/stat``). The baseline is a bare Starlette
route in the same kind of process that parses the JSON body and answers JSON, with no
upstream call. Linux only.

    python bench/upstream_relay.py [--requests 2000] [--chunks 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.serve import free_port
from tests.upstream.servers import (  # noqa: E402
    Request,
    Upstream,
    chunk,
    end_stream,
    openai_stub,
    send_chunk,
    sse,
    start_stream,
    wait_until,
)

TICK = os.sysconf("SC_CLK_TCK")
BODY = {"model": "m", "messages": [{"role": "user", "content": "What is the capital of Italy?"}], "max_tokens": 64}
PATH = "/v1/projects/p/locations/l/endpoints/ep/chat/completions"

GATEWAY = """
import json, os, sys, uvicorn
from chatgate import config
from chatgate.engines.local.engine import LocalEngine
from chatgate.front.app import build_app
settings = config.load(environ={}, overrides=json.loads(os.environ["BENCH_SETTINGS"]))
uvicorn.run(build_app(settings, local=LocalEngine([])), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

BASELINE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def chat(request):
    await request.json()
    return JSONResponse({"object": "chat.completion", "choices": []})
app = Starlette(routes=[Route("%s", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""" % PATH


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


class Server:
    def __init__(self, code: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(self.port)], env=environ)

    def __enter__(self) -> Server:
        def up() -> bool:
            try:
                httpx.get(self.url + "/", timeout=1)
                return True
            except httpx.HTTPError:
                return False
        wait_until(up, "server started", deadline=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def per_request(server: Server, client: httpx.Client, n: int) -> float:
    for _ in range(50):
        client.post(server.url + PATH, json=BODY)  # warm up
    before = process_cpu(server.proc.pid)
    for _ in range(n):
        assert client.post(server.url + PATH, json=BODY).status_code == 200
    return (process_cpu(server.proc.pid) - before) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=2000)
    args = parser.parse_args()
    event = sse(chunk({"content": "word "}))

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.json().get("stream"):
            await start_stream(writer)
            for _ in range(args.chunks):
                await send_chunk(writer, event)
                await asyncio.sleep(0.0002)  # one token at a time, as a model sends them
            await send_chunk(writer, b"data: [DONE]\n\n")
            await end_stream(writer)
        else:
            await openai_stub(request, writer)

    with Upstream(handler) as up, httpx.Client(timeout=60) as client:
        with Server(BASELINE) as base:
            baseline = per_request(base, client, args.requests)
        cfg = {"auth": {"enabled": False}, "endpoints": {"ep": {"upstreams": [up.url]}}}
        with Server(GATEWAY, {"BENCH_SETTINGS": json.dumps(cfg)}) as gw:
            relayed = per_request(gw, client, args.requests)
            before = process_cpu(gw.proc.pid)
            started = time.perf_counter()
            with client.stream("POST", gw.url + PATH, json={**BODY, "stream": True}) as response:
                reads = sum(1 for _ in response.iter_bytes())
            per_chunk = (process_cpu(gw.proc.pid) - before) / args.chunks
            seconds = time.perf_counter() - started
    print(f"baseline {baseline * 1e6:.1f} µs | relay non-streaming {relayed * 1e6:.1f} µs "
          f"({relayed / baseline:.1f}x; budget 300 µs) | relay stream {per_chunk * 1e6:.1f} µs per chunk "
          f"(budget 30 µs; {args.chunks} chunks in {seconds:.2f} s, {reads} client reads)")


if __name__ == "__main__":
    main()
