"""Gateway CPU per non-streaming request, generation excluded (budget: 300 µs), and
per streamed chunk, against a bare Starlette JSON endpoint as the baseline.

chatgate runs its whole path (routing, auth with a signed token, body decoding and
validation, OpenAI → Gemini translation, the fold of the engine's chunks, Gemini → OpenAI
translation, encoding) in-process over raw ASGI, with an engine that answers at once.

    python bench/gateway.py [--requests 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from _asgi import call
from _requests import typical_body

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from chatgate import config, tokens  # noqa: E402
from chatgate.front.app import build_app  # noqa: E402
from chatgate.protocols import gemini as g  # noqa: E402
from chatgate.protocols.tuning import NO_TUNING, Tuning  # noqa: E402
from tests.asgi import running  # noqa: E402

BODY = typical_body("bench-model")
ANSWER = "Rome is the capital of Italy."


class InstantEngine:
    """Answers at once with a fixed text split in tokens, in the local engine's shape."""

    def __init__(self, pieces: int = 8) -> None:
        words = ANSWER.split(" ")
        self.pieces = [w + " " for w in words[:-1]] + [words[-1]]
        self.busy = False

    def resolve(self, name: str) -> str | None:
        return name if name == "bench-model" else None

    def names(self) -> list[str]:
        return ["bench-model"]

    def model(self, name: str) -> InstantEngine:
        return self

    waiting = 0

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def generate(
        self,
        model: str,
        request: g.GenerateContentRequest,
        *,
        stream: bool,
        parallel_tool_calls: bool = True,
        tuning: Tuning = NO_TUNING,
    ) -> AsyncIterator[g.GenerateContentResponse]:
        if not stream:
            yield g.GenerateContentResponse(
                candidates=[
                    g.Candidate(
                        index=0, content=g.Content(role="model", parts=[g.Part(text=ANSWER)]), finish_reason="STOP"
                    )
                ],
                usage_metadata=g.UsageMetadata(prompt_token_count=30, candidates_token_count=8, total_token_count=38),
            )
            return
        for piece in self.pieces:
            yield g.GenerateContentResponse(
                candidates=[g.Candidate(index=0, content=g.Content(role="model", parts=[g.Part(text=piece)]))]
            )
        yield g.GenerateContentResponse(
            candidates=[g.Candidate(index=0, finish_reason="STOP")],
            usage_metadata=g.UsageMetadata(prompt_token_count=30, candidates_token_count=8, total_token_count=38),
        )


def baseline_app() -> Starlette:
    """The floor: a Starlette route that parses the JSON body and answers with JSON."""
    answer = json.dumps({"choices": [{"message": {"content": ANSWER}}]}).encode()

    async def echo(request: Request) -> Response:
        json.loads(await request.body())
        return Response(answer, media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", echo, methods=["POST"])])


async def measure(app: Any, body: bytes, headers: list[tuple[bytes, bytes]], n: int) -> float:
    for _ in range(200):  # warm up
        status, _ = await call(app, "POST", "/v1/chat/completions", body, headers)
        assert status == 200, status
    start = time.process_time()
    for _ in range(n):
        await call(app, "POST", "/v1/chat/completions", body, headers)
    return (time.process_time() - start) / n * 1e6


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        settings = config.load(None, environ={}, overrides={"auth": {"state_dir": state}})
        engine = InstantEngine()
        app = build_app(settings, local=engine)
        headers = [(b"authorization", f"Bearer {tokens.mint(tokens.load_secret(config.state_dir(settings)))}".encode())]
        async with running(app):
            base = await measure(baseline_app(), BODY, [], n)
            ours = await measure(app, BODY, headers, n)
            stream_body = BODY[:-1] + b', "stream": true}'
            ours_stream = await measure(app, stream_body, headers, n)
    chunks = len(engine.pieces) + 1
    per_chunk = (ours_stream - ours) / chunks
    print(f"{'':38s}{'µs/request':>12s}")
    print(f"{'baseline (Starlette JSON echo)':38s}{base:12.1f}")
    print(f"{'chatgate non-streaming':38s}{ours:12.1f}   ratio {ours / base:.2f}x   budget 300 µs")
    print(
        f"{'chatgate streaming (' + str(chunks) + ' chunks)':38s}{ours_stream:12.1f}   ratio {ours_stream / base:.2f}x"
    )
    print(f"{'  extra per stream chunk (approx.)':38s}{per_chunk:12.1f}   budget 30 µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    asyncio.run(main(parser.parse_args().requests))
