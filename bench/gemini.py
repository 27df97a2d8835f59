"""What the Gemini route costs: an OpenAI request for a ``google/*`` model, translated to
``generateContent`` and back, as whole-process CPU with real sockets, beside the bare mock.

Besides this one (the load), the processes are: a loopback mock of Google's API (a raw ASGI
application, no framework, served by uvicorn on uvloop with httptools, answering at once: one
``GenerateContentResponse`` for ``:generateContent``, or ``--events`` server-sent events, one
``send`` each, for ``:streamGenerateContent``); the same answers from a raw asyncio protocol
with httptools (no ASGI: the floor of any Python server, measured as a row of its own);
chatgate (``build_app``, no local model, auth off) in Gemini-API mode and in Vertex mode with
``base_url`` on the mock; a bare pass-through proxy (uvicorn, one Starlette route forwarding
to the mock with aiohttp: the floor of any gateway on chatgate's stack); and, with
``--litellm PYTHON``, LiteLLM's proxy (its ``gemini`` provider, run by that interpreter) on
the same mock. The baseline is the ASGI mock itself, measured directly with the same requests
in Google's format (ten times as many, to be measurable). Only the measured server's CPU is
counted (all its threads, ``/proc/<pid>/task/*/schedstat``). Rows: a non-streaming request at
1, 16 and 64 connections (CPU per request, requests/s), a stream of ``--events`` chunks at 16
connections (CPU per stream), and the median time to the first byte of a stream at 1
connection. Linux only. Budgets: 13x the bare mock per request at 16 and 64 connections,
throughput not falling with concurrency; 9x the bare mock per stream.

    python bench/gemini.py [--requests 3000] [--streams 800] [--rounds 3] [--src DIR] [--litellm PYTHON]

The servers are measured in turn, ``--rounds`` times (each round a share of the requests);
each cell is the median of its rounds.

``--src`` adds a row for chatgate (Gemini-API mode) run from another checkout's ``src``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

from _requests import typical_body
from upstream_relay import GATEWAY, Process, free_port, median_cells, process_cpu

MODEL = "gemini-2.5-flash"
CHAT_PATH = "/v1/projects/p/locations/us-central1/endpoints/openapi/chat/completions"
CONCURRENCY = (1, 16, 64)
STREAM_CONCURRENCY = 16

# What chatgate sends Google for typical_body (the bare mock gets the same bytes).
GEMINI_BODY = json.dumps(
    {
        "contents": [
            {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
            {"role": "model", "parts": [{"text": "Paris."}]},
            {"role": "user", "parts": [{"text": "And of Italy? Answer in one word."}]},
        ],
        "systemInstruction": {"parts": [{"text": "You are a helpful assistant."}]},
        "generationConfig": {"temperature": 0.7, "maxOutputTokens": 64, "stopSequences": ["\n\n"]},
    }
).encode()

# Google's answers, shared by both mocks: one response, or EVENTS server-sent events.
ANSWERS = r"""
import json, sys
EVENTS = int(sys.argv[2])
def response(text, finish=False):
    out = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
           "usageMetadata": {"promptTokenCount": 24, "candidatesTokenCount": 2, "totalTokenCount": 26},
           "modelVersion": "gemini-2.5-flash", "responseId": "mock-response-id"}
    if finish:
        out["candidates"][0]["finishReason"] = "STOP"
    return json.dumps(out).encode()
BODY = response("Rome.", finish=True)
SSE = [b"data: " + response("word ", finish=i == EVENTS - 1) + b"\r\n\r\n" for i in range(EVENTS)]
"""

# The mock the gateways talk to, and the baseline: raw ASGI (no framework) on uvicorn.
ASGI_SERVER = r"""
import uvicorn
JSON = {"type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"application/json; charset=UTF-8"), (b"content-length", b"%d" % len(BODY))]}
STREAM = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
async def app(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    if scope["path"].endswith(":streamGenerateContent"):
        await send(STREAM)
        for event in SSE:  # event by event, at once
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send(JSON)
        await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools", lifespan="off",
            access_log=False, log_level="warning")
"""

# The same answers without ASGI: an asyncio protocol writing canned bytes (a row, not the upstream).
PROTOCOL_SERVER = r"""
import asyncio, uvloop, httptools
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)
def chunk(data): return b"%x\r\n%s\r\n" % (len(data), data)
STREAM = [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"]
STREAM += [chunk(event) for event in SSE]
STREAM.append(b"0\r\n\r\n")
class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t; self.p = httptools.HttpRequestParser(self); self.url = b""
    def data_received(self, d):
        self.p.feed_data(d)
    def on_url(self, url):
        self.url += url
    def on_message_complete(self):
        if b":streamGenerateContent" in self.url:
            for piece in STREAM:  # event by event, at once
                self.t.write(piece)
        else:
            self.t.write(ANSWER)
        self.url = b""
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
uvloop.run(main())
"""
MOCK, PROTOCOL_MOCK = ANSWERS + ASGI_SERVER, ANSWERS + PROTOCOL_SERVER

# The floor of a Python gateway on chatgate's stack: uvicorn, one Starlette route forwarding
# the body to the mock with aiohttp and the answer back; no translation, checks or metrics.
PROXY = """
import os, sys, aiohttp, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
MOCK = os.environ["BENCH_MOCK"]
session = None
async def forward(request):
    global session
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
    url = MOCK + request.url.path + ("?" + request.url.query if request.url.query else "")
    upstream = await session.post(url, data=await request.body(), headers={"content-type": "application/json"})
    media_type = upstream.headers.get("content-type", "")
    if media_type.startswith("text/event-stream"):
        async def pieces():
            async for piece in upstream.content.iter_any():
                yield piece
            upstream.release()
        return StreamingResponse(pieces(), media_type=media_type)
    return Response(await upstream.read(), status_code=upstream.status, media_type=media_type)
app = Starlette(routes=[Route("/{path:path}", forward, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

LITELLM = """
import os, sys
cli = os.path.join(os.path.dirname(sys.executable), "litellm")
os.execv(cli, [cli, "--config", os.environ["BENCH_LITELLM_CONFIG"], "--host", "127.0.0.1", "--port", sys.argv[1],
               "--num_workers", "1"])
"""


class Target:
    """A server under load, and what to send it."""

    def __init__(
        self,
        name: str,
        process: Process,
        path: str,
        stream_path: str,
        body: bytes,
        stream_body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name, self.process = name, process
        self.path, self.stream_path, self.body, self.stream_body = path, stream_path, body, stream_body
        self.headers = {"content-type": "application/json", **(headers or {})}

    def route(self) -> tuple[str, str, bytes, bytes, dict[str, str]]:
        """What is sent, for another server that takes the same requests."""
        return self.path, self.stream_path, self.body, self.stream_body, self.headers


async def load(t: Target, n: int, concurrency: int) -> tuple[float, float]:
    """CPU of the server per non-streaming request, and requests per second."""
    url, pid = t.process.url + t.path, t.process.proc.pid
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def worker(count: int) -> None:
            for _ in range(count):
                async with session.post(url, data=t.body, headers=t.headers) as r:
                    body = await r.read()
                    assert r.status == 200 and b"Rome." in body, body[:300]

        await asyncio.gather(*(worker(100 // concurrency + 1) for _ in range(concurrency)))  # warm up
        each = max(1, n // concurrency)
        before, started = process_cpu(pid), time.perf_counter()
        await asyncio.gather(*(worker(each) for _ in range(concurrency)))
        done = each * concurrency
        return (process_cpu(pid) - before) / done, done / (time.perf_counter() - started)


async def streams(t: Target, n: int, events: int) -> tuple[float, float]:
    """CPU of the server per stream at STREAM_CONCURRENCY, and the median time to the first
    byte of a stream, one at a time."""
    url, pid = t.process.url + t.stream_path, t.process.proc.pid
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> float:
            started = time.perf_counter()
            async with session.post(url, data=t.stream_body, headers=t.headers) as r:
                assert r.status == 200, await r.text()
                first = await r.content.readany()
                took = time.perf_counter() - started
                rest = await r.read()
            assert (first + rest).count(b"word ") == events, (first + rest)[:300]
            return took

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        await asyncio.gather(*(worker(2) for _ in range(STREAM_CONCURRENCY)))  # warm up
        each = max(1, n // STREAM_CONCURRENCY)
        before = process_cpu(pid)
        await asyncio.gather(*(worker(each) for _ in range(STREAM_CONCURRENCY)))
        cpu = (process_cpu(pid) - before) / (each * STREAM_CONCURRENCY)
        firsts = [await one() for _ in range(max(5, min(200, n // 4)))]
        return cpu, statistics.median(firsts)


def measure(t: Target, requests: int, n_streams: int, events: int) -> dict[str, tuple[float, float]]:
    out = {str(c): uvloop.run(load(t, requests, c)) for c in CONCURRENCY}
    out["stream"] = uvloop.run(streams(t, n_streams, events))
    return out


def chatgate(name: str, gemini: dict[str, object], src: Path | None = None) -> Target:
    cfg = {"auth": {"enabled": False}, "local": {"enabled": False} if src is None else {}, "gemini": gemini}
    process = Process(GATEWAY, env={"BENCH_SETTINGS": json.dumps(cfg)}, **({"src": src} if src else {}))
    body = typical_body(f"google/{MODEL}")
    return Target(name, process, CHAT_PATH, CHAT_PATH, body, typical_body(f"google/{MODEL}", stream=True))


class Foreign(Process):
    """A server run by another interpreter (LiteLLM in its own environment)."""

    def __init__(self, python: str, code: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [python, "-c", code, str(self.port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def litellm(python: str, mock_url: str, config_dir: Path) -> Target:
    config = config_dir / "litellm.json"  # YAML is a superset of JSON
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {"model": f"gemini/{MODEL}", "api_key": "k", "api_base": mock_url},
                    }
                ],
                "general_settings": {"master_key": "sk-bench"},  # it refuses to start without one
            }
        )
    )
    process = Foreign(python, LITELLM, {"BENCH_LITELLM_CONFIG": str(config)})
    return Target(
        "LiteLLM proxy",
        process,
        "/v1/chat/completions",
        "/v1/chat/completions",
        typical_body(MODEL),
        typical_body(MODEL, stream=True),
        {"authorization": "Bearer sk-bench"},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--streams", type=int, default=800)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="each cell is the median of this many rounds")
    parser.add_argument("--src", type=Path, help="add a row for chatgate run from this src directory")
    parser.add_argument("--litellm", help="a Python interpreter with litellm[proxy] installed: adds its row")
    args = parser.parse_args()
    mock = Process(MOCK, str(args.events))
    mock.wait_up()
    gemini_api = {"mode": "gemini-api", "api_key": "k", "base_url": mock.url}
    vertex = {"project": "p", "location": "us-central1", "access_token": "t", "base_url": mock.url}
    generate = f"/v1beta/models/{MODEL}:generateContent"
    baseline = Target(
        "bare mock (baseline)",
        mock,
        generate,
        f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        GEMINI_BODY,
        GEMINI_BODY,
        {"x-goog-api-key": "k"},
    )
    targets = [baseline]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            protocol_mock = Process(PROTOCOL_MOCK, str(args.events))
            targets.append(Target("protocol mock (no ASGI)", protocol_mock, *baseline.route()))
            targets.append(Target("bare proxy", Process(PROXY, env={"BENCH_MOCK": mock.url}), *baseline.route()))
            if args.src is not None:
                targets.append(chatgate(f"chatgate {args.src}", gemini_api, args.src))
            targets += [chatgate("chatgate, Gemini API", gemini_api), chatgate("chatgate, Vertex AI", vertex)]
            if args.litellm:
                targets.append(litellm(args.litellm, mock.url, Path(tmp)))
            for t in targets:
                t.process.wait_up()
            # Rounds, every server in turn, so that a burst of load from elsewhere on the
            # machine lands in one round of one row, and the median leaves it out.
            runs: dict[str, list[dict[str, tuple[float, float]]]] = {t.name: [] for t in targets}
            for _ in range(args.rounds):
                for t in targets:
                    scale = 10 if t.process in (mock, protocol_mock) else 1
                    n, n_streams = args.requests * scale // args.rounds, args.streams * scale // args.rounds
                    runs[t.name].append(measure(t, n, n_streams, args.events))
            rows = {name: median_cells(r) for name, r in runs.items()}
        finally:
            for t in targets:
                t.process.stop()
    report(rows, args.events)


def report(rows: dict[str, dict[str, tuple[float, float]]], events: int) -> None:
    base = rows["bare mock (baseline)"]
    print(
        f"{'server':26}"
        + "".join(f"{f'{c} conn: CPU/request (ratio), req/s':>36}" for c in CONCURRENCY)
        + f"{f'{events}-event stream, {STREAM_CONCURRENCY} conn: CPU (ratio)':>42}{'first byte':>12}"
    )
    for name, row in rows.items():
        cells = [
            f"{row[str(c)][0] * 1e6:6.0f} µs ({row[str(c)][0] / base[str(c)][0]:5.1f}x) {row[str(c)][1]:6.0f}/s"
            for c in CONCURRENCY
        ]
        cpu, first = row["stream"]
        stream = f"{cpu * 1e6:6.0f} µs ({cpu / base['stream'][0]:5.1f}x)"
        print(f"{name:26}" + "".join(f"{cell:>36}" for cell in cells) + f"{stream:>42}{first * 1e3:9.2f} ms")
    print(
        "ratios against the bare mock; budgets: 13x per request at 16 and 64 connections, "
        "throughput not falling; 9x per stream"
    )


if __name__ == "__main__":
    main()
