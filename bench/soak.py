"""Soak: mixed load on a live chatgate for a while, and whether it gives back what it took.

chatgate (``build_app`` with the embedded model, auth off, an endpoint relaying to a stub
OpenAI-compatible upstream) is served by uvicorn on a background thread of this process;
``--workers`` clients send, for ``--minutes``, a rotation of: a short local answer, a local
stream the client drops after its first chunk (mid-stream disconnect), a local answer under a
JSON Schema, a relayed JSON answer and a relayed stream, and bad requests (broken JSON, ``n``
over 8, an unknown model). Before the load (after one warm-up round) and after it (clients
closed, a moment to settle), it prints the process's resident memory, open file descriptors
and the asyncio tasks on the server's loop; the baseline is the start of the same run.
Linux only (``/proc``).

    python bench/soak.py [--minutes 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from chatgate import config  # noqa: E402
from tests.live import LiveServer  # noqa: E402
from tests.upstream.servers import Upstream, openai_stub  # noqa: E402

MODEL = config.EMBEDDED_MODEL
LOCAL = "/v1/chat/completions"
RELAY = "/v1/projects/default/locations/us-central1/endpoints/stub/chat/completions"
JSON = {"Content-Type": "application/json"}
SAY = [{"role": "user", "content": "Say hello."}]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "x",
        "schema": {"type": "object", "properties": {"word": {"type": "string", "maxLength": 12}}, "required": ["word"]},
    },
}


def snapshot(server: LiveServer) -> dict[str, float]:
    gc.collect()
    rss = next(
        int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:")
    )

    async def tasks() -> int:
        return len(asyncio.all_tasks())

    return {"rss_mib": rss / 1024, "fds": len(os.listdir("/proc/self/fd")), "tasks": server._loop.call(tasks())}


async def one(http: httpx.AsyncClient, kind: str) -> str:
    if kind == "local":
        r = await http.post(LOCAL, json={"model": MODEL, "messages": SAY, "max_tokens": 8})
    elif kind == "schema":
        r = await http.post(LOCAL, json={"model": MODEL, "messages": SAY, "max_tokens": 16, "response_format": SCHEMA})
    elif kind == "disconnect":
        async with http.stream(
            "POST", LOCAL, json={"model": MODEL, "messages": SAY, "max_tokens": 64, "stream": True}
        ) as s:
            async for _ in s.aiter_lines():
                break  # the client leaves mid-stream
        return f"{kind} {s.status_code}"
    elif kind == "relay":
        r = await http.post(RELAY, json={"model": "m", "messages": SAY})
    elif kind == "relay stream":
        async with http.stream("POST", RELAY, json={"model": "m", "messages": SAY, "stream": True}) as s:
            await s.aread()
        return f"{kind} {s.status_code}"
    elif kind == "bad json":
        r = await http.post(LOCAL, content=b'{"model": ', headers=JSON)
    elif kind == "bad n":
        r = await http.post(LOCAL, json={"model": MODEL, "messages": SAY, "n": 9})
    else:
        r = await http.post(LOCAL, json={"model": "no/such-model", "messages": SAY})
    return f"{kind} {r.status_code}"


KINDS = ["local", "disconnect", "schema", "relay", "relay stream", "bad json", "bad n", "unknown model"]


async def load(url: str, seconds: float, workers: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    end = time.monotonic() + seconds

    async def worker(index: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            turn = index
            while time.monotonic() < end:
                seen[await one(http, KINDS[turn % len(KINDS)])] += 1
                turn += 1

    await asyncio.gather(*(worker(i) for i in range(workers)))
    return seen


async def warm_up(url: str) -> None:
    """Every kind once, at the load's concurrency: pools, caches and the grammar tokenizer filled."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for _ in range(2):
            await asyncio.gather(*(one(http, kind) for kind in KINDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with Upstream(openai_stub) as upstream:
        settings = config.load(
            None,
            environ={},
            overrides={"auth": {"enabled": False}, "endpoints": {"stub": {"upstreams": [upstream.url]}}},
        )
        with LiveServer(settings) as server:
            asyncio.run(warm_up(server.url))
            time.sleep(1)
            start = snapshot(server)
            began = time.monotonic()
            seen = asyncio.run(load(server.url, args.minutes * 60, args.workers))
            elapsed = time.monotonic() - began
            time.sleep(2)  # let closed connections and finished generations settle
            end = snapshot(server)
    print(f"{sum(seen.values())} requests in {elapsed:.0f} s with {args.workers} clients:")
    for outcome, count in sorted(seen.items()):
        print(f"  {outcome:<22} {count}")
    print(f"{'':<10} {'start':>9} {'end':>9} {'ratio':>7}")
    for key in ("rss_mib", "fds", "tasks"):
        ratio = end[key] / start[key] if start[key] else float("nan")
        print(f"{key:<10} {start[key]:>9.1f} {end[key]:>9.1f} {ratio:>7.3f}")


if __name__ == "__main__":
    main()
