"""What relaying to a self-deployed endpoint costs: whole-process CPU of the gateway, with
real sockets, beside a bare pass-through proxy measured in the same run.

Three processes besides this one: a bare uvloop + httptools upstream that answers at once
(a JSON completion, or an SSE stream of ``--chunks`` events a fraction of a millisecond
apart); chatgate (``build_app``, no local model, auth off) relaying to it; and the baseline,
a bare pass-through proxy of the same kind (uvicorn, one Starlette route forwarding the body
with aiohttp and the answer back, no checks, no metrics). Only the measured server's CPU is
counted (all its threads, ``/proc/<pid>/task/*/schedstat``), per request at 1, 16 and 64 requests in flight, with its
throughput; then per stream chunk. Linux only. Budgets: 300 µs per request,
25 µs per stream chunk, throughput not falling with concurrency.

    python bench/upstream_relay.py [--requests 3000] [--chunks 2000] [--rounds 3] [--src DIR]

The servers are measured in turn, ``--rounds`` times (each round a share of the requests and
one stream of ``--chunks`` chunks); each cell is the median of its rounds.

``--src`` runs the gateway from another checkout's ``src`` (to compare with an earlier
version in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import uvloop

ROOT = Path(__file__).resolve().parents[1]
PATH = "/v1/projects/p/locations/l/endpoints/ep/chat/completions"
BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "What is the capital of Italy?"}], "max_tokens": 64}
).encode()
STREAM_BODY = json.dumps({**json.loads(BODY), "stream": True}).encode()
CONCURRENCY = (1, 16, 64)

UPSTREAM = r"""
import asyncio, sys, uvloop, httptools
CHUNKS = int(sys.argv[2])
BODY = (b'{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"Rome."},"logprobs":null,"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}')
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)
EVENT = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":"m","choices":'
         b'[{"index":0,"delta":{"content":"word "},"logprobs":null,"finish_reason":null}]}\n\n')
LAST = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":"m","choices":[],'
        b'"usage":{"prompt_tokens":12,"completion_tokens":2000,"total_tokens":2012}}\n\ndata: [DONE]\n\n')
def chunk(data): return b"%x\r\n%s\r\n" % (len(data), data)
class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t; self.p = httptools.HttpRequestParser(self); self.body = b""
    def data_received(self, d):
        self.p.feed_data(d)
    def on_body(self, b):
        self.body += b
    def on_message_complete(self):
        if self.p.get_method() == b"GET":
            self.t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}")
        elif b'"stream": true' in self.body:
            asyncio.ensure_future(self.stream())
        else:
            self.t.write(ANSWER)
        self.body = b""
    async def stream(self):
        self.t.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(CHUNKS):
            self.t.write(chunk(EVENT))
            await asyncio.sleep(0.0002)  # one token at a time, as a model sends them
        self.t.write(chunk(LAST) + b"0\r\n\r\n")
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
uvloop.run(main())
"""

GATEWAY = """
import json, os, sys, uvicorn
from chatgate import config
from chatgate.engines.local.engine import LocalEngine
from chatgate.front.app import build_app
settings = config.load(environ={}, overrides=json.loads(os.environ["BENCH_SETTINGS"]))
app = build_app(settings, local=LocalEngine([]))
try:  # served as `chatgate serve` serves it
    from chatgate.serving import Server, uvicorn_config
except ImportError:  # an older checkout (--src)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
else:
    options = dict(host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    Server(uvicorn_config(app, settings.server, **options), on_shutdown=lambda: None).run()
"""

BASELINE = (
    """
import os, sys, aiohttp, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
UPSTREAM = os.environ["BENCH_UPSTREAM"] + "/v1/chat/completions"
session = None
async def chat(request):
    global session
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
    upstream = await session.post(UPSTREAM, data=await request.body(),
                                  headers={"content-type": "application/json"})
    media_type = upstream.headers.get("content-type", "")
    if media_type.startswith("text/event-stream"):
        async def pieces():
            async for piece in upstream.content.iter_any():
                yield piece
            upstream.release()
        return StreamingResponse(pieces(), media_type=media_type)
    content = await upstream.read()
    return Response(content, status_code=upstream.status, media_type=media_type)
app = Starlette(routes=[Route("%s", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
    % PATH
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu(pid: int) -> float:
    """Seconds on a CPU of every thread of ``pid`` (``schedstat``: nanoseconds, where
    ``stat`` counts 10 ms ticks, too coarse for a stream chunk)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total / 1e9


class Process:
    def __init__(self, code: str, *args: str, env: dict[str, str] | None = None, src: Path = ROOT / "src") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "PYTHONPATH": str(src), **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(self.port), *args], env=environ)

    def wait_up(self) -> None:
        import socket

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


async def load(url: str, pid: int, n: int, concurrency: int) -> tuple[float, float]:
    """CPU of ``pid`` per request, and requests per second, at ``concurrency`` in flight."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> None:
            async with session.post(url + PATH, data=BODY, headers={"content-type": "application/json"}) as r:
                assert r.status == 200, await r.text()
                await r.read()

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        await asyncio.gather(*(worker(100 // concurrency + 1) for _ in range(concurrency)))  # warm up
        each = max(1, n // concurrency)
        before, started = process_cpu(pid), time.perf_counter()
        await asyncio.gather(*(worker(each) for _ in range(concurrency)))
        done = each * concurrency
        return (process_cpu(pid) - before) / done, done / (time.perf_counter() - started)


async def stream(url: str, pid: int, chunks: int) -> float:
    """CPU of ``pid`` per relayed stream chunk."""
    async with aiohttp.ClientSession() as session:
        before = process_cpu(pid)
        async with session.post(url + PATH, data=STREAM_BODY, headers={"content-type": "application/json"}) as r:
            assert r.status == 200
            got = sum([len(piece) async for piece in r.content.iter_any()])
        assert got > chunks * 50
        return (process_cpu(pid) - before) / chunks


def measure(server: Process, requests: int, chunks: int) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for c in CONCURRENCY:
        out[f"{c}"] = uvloop.run(load(server.url, server.proc.pid, requests, c))
    out["stream"] = (uvloop.run(stream(server.url, server.proc.pid, chunks)), 0.0)
    return out


def median_cells(runs: list[dict[str, tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Each cell's median over the rounds, each of its two numbers on its own."""
    return {
        cell: (statistics.median(r[cell][0] for r in runs), statistics.median(r[cell][1] for r in runs))
        for cell in runs[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="each cell is the median of this many rounds")
    parser.add_argument("--src", type=Path, help="run the gateway from this src directory")
    args = parser.parse_args()
    upstream = Process(UPSTREAM, str(args.chunks))
    upstream.wait_up()
    cfg = {"auth": {"enabled": False}, "local": {"enabled": False}, "endpoints": {"ep": {"upstreams": [upstream.url]}}}
    servers: list[tuple[str, Process]] = []
    try:
        servers.append(("bare proxy (baseline)", Process(BASELINE, env={"BENCH_UPSTREAM": upstream.url})))
        if args.src is not None:
            old = {**cfg, "local": {}}  # an older checkout may not know local.enabled
            servers.append(
                (f"chatgate {args.src}", Process(GATEWAY, env={"BENCH_SETTINGS": json.dumps(old)}, src=args.src))
            )
        servers.append(("chatgate", Process(GATEWAY, env={"BENCH_SETTINGS": json.dumps(cfg)})))
        for _, server in servers:
            server.wait_up()
        # Rounds, every server in turn: a burst of load from elsewhere lands in one round of one
        # row, and the median leaves it out.
        runs: dict[str, list[dict[str, tuple[float, float]]]] = {name: [] for name, _ in servers}
        for _ in range(args.rounds):
            for name, server in servers:
                runs[name].append(measure(server, args.requests // args.rounds, args.chunks))
        rows = {name: median_cells(r) for name, r in runs.items()}
    finally:
        for _, server in servers:
            server.stop()
        upstream.stop()
    base = rows["bare proxy (baseline)"]
    print(
        f"{'server':28}"
        + "".join(f"{f'{c} in flight: CPU/request (ratio), req/s':>44}" for c in CONCURRENCY)
        + f"{'CPU per stream chunk (ratio)':>30}"
    )
    for name, row in rows.items():
        cells = [
            f"{row[str(c)][0] * 1e6:7.0f} µs ({row[str(c)][0] / base[str(c)][0]:4.2f}x) {row[str(c)][1]:7.0f}/s"
            for c in CONCURRENCY
        ]
        chunk = f"{row['stream'][0] * 1e6:7.1f} µs ({row['stream'][0] / base['stream'][0]:4.2f}x)"
        print(f"{name:28}" + "".join(f"{cell:>44}" for cell in cells) + f"{chunk:>30}")
    print("budgets: 300 µs per request at every concurrency, throughput not falling; 25 µs per chunk")


if __name__ == "__main__":
    main()
