"""Client CPU per request of the HTTP clients the relay could use, at 1, 16 and 64 requests
in flight, against a bare uvloop + httptools upstream in another process.

Only this process's CPU is counted (``time.process_time``), so the upstream's work is out.
The baseline is a raw asyncio protocol that writes a canned request and reads the answer's
bytes on a kept-alive connection: the floor for any client.

Clients that are not installed (pyreqwest, a Rust client, is not a dependency) are left out.

    python bench/http_clients.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import subprocess
import sys
import time

import aiohttp
import httpcore
import httpx
import uvloop

UPSTREAM = r"""
import asyncio, sys, uvloop, httptools
BODY = b'{"id":"c","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Rome."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)
class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t; self.p = httptools.HttpRequestParser(self)
    def data_received(self, d):
        self.p.feed_data(d)
    def on_message_complete(self):
        self.t.write(ANSWER)
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
uvloop.run(main())
"""

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "What is the capital of Italy?"}], "max_tokens": 64}'
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "Accept-Encoding": "identity",
    "User-Agent": "chatgate",
}


class Raw(asyncio.Protocol):
    """One connection, one request at a time: write, read until the body is complete."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        if sep and self.done is not None:
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(body) >= length:
                self.buf = b""
                self.done.set_result(None)


async def raw_client(port: int):
    loop = asyncio.get_running_loop()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )
    pool: list[Raw] = []

    async def call() -> None:
        conn = pool.pop() if pool else (await loop.create_connection(Raw, "127.0.0.1", port))[1]
        conn.done = loop.create_future()
        conn.transport.write(request)  # type: ignore[attr-defined]
        await conn.done
        pool.append(conn)

    return call, None


async def httpx_client(port: int):
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=128))
    url = httpx.URL(f"http://127.0.0.1:{port}/v1/chat/completions")
    headers = httpx.Headers(HEADERS)

    async def call() -> None:
        response = await client.send(httpx.Request("POST", url, headers=headers, content=BODY), stream=True)
        await response.aread()
        await response.aclose()

    return call, client.aclose


async def httpcore_client(port: int):
    pool = httpcore.AsyncConnectionPool(max_connections=None, max_keepalive_connections=128)
    url = f"http://127.0.0.1:{port}/v1/chat/completions".encode()
    headers = [(k.encode(), v.encode()) for k, v in HEADERS.items()]

    async def call() -> None:
        response = await pool.request("POST", url, headers=headers, content=BODY)
        assert response.status == 200

    return call, pool.aclose


async def aiohttp_client(port: int):
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    async def call() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            await response.read()

    return call, session.close


async def pyreqwest_client(port: int):
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().error_for_status(False).build()
    await client.__aenter__()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    async def call() -> None:
        response = await client.post(url).headers(HEADERS).body_bytes(BODY).build().send()
        await response.bytes()

    async def close() -> None:
        await client.__aexit__(None, None, None)

    return call, close


CLIENTS = {
    "raw asyncio (floor)": raw_client,
    "httpx": httpx_client,
    "httpcore": httpcore_client,
    "aiohttp": aiohttp_client,
}
if importlib.util.find_spec("pyreqwest") is not None:
    CLIENTS["pyreqwest"] = pyreqwest_client


async def measure(make, port: int, n: int, concurrency: int) -> tuple[float, float]:
    call, close = await make(port)
    for _ in range(100):
        await call()

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    done = n // concurrency * concurrency
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if close is not None:
        await close()
    return cpu / done, done / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert upstream.stdout is not None and upstream.stdout.readline().strip() == "ready"
        results: dict[str, dict[int, tuple[float, float]]] = {}
        for name, make in CLIENTS.items():
            results[name] = {}
            for concurrency in (1, 16, 64):
                results[name][concurrency] = uvloop.run(measure(make, port, args.requests, concurrency))
        floor = results["raw asyncio (floor)"]
        print(f"{'client':22} " + " ".join(f"{f'{c} in flight (CPU, ratio, req/s)':>34}" for c in (1, 16, 64)))
        for name, by in results.items():
            cells = [f"{by[c][0] * 1e6:6.0f} µs {by[c][0] / floor[c][0]:4.1f}x {by[c][1]:6.0f}/s" for c in (1, 16, 64)]
            print(f"{name:22} " + " ".join(f"{cell:>34}" for cell in cells))
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
