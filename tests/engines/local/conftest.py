"""The embedded model behind a LocalEngine, driven straight with canonical requests (no
HTTP, no translation): one engine and one event loop for the whole session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from chatgate import config
from chatgate.engines.local.engine import LocalEngine
from chatgate.engines.local.models import specs
from chatgate.protocols import gemini as g


class Runner:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = LocalEngine(specs(config.load(None, environ={}, overrides={})))
        self.loop.run_until_complete(self.engine.start())
        self.model = self.engine.names()[0]

    def chunks(
        self, request: g.GenerateContentRequest, *, stream: bool = False, **kwargs: Any
    ) -> list[g.GenerateContentResponse]:
        async def collect() -> list[g.GenerateContentResponse]:
            return [c async for c in self.engine.generate(self.model, request, stream=stream, **kwargs)]

        return self.loop.run_until_complete(collect())

    def idle(self, limit: float = 30.0) -> bool:
        """Run the loop until the engine holds no context (its generation thread hands the
        context back through this loop), within ``limit`` seconds; whether it got there."""

        async def wait() -> bool:
            deadline = self.loop.time() + limit
            while self.engine.busy and self.loop.time() < deadline:
                await asyncio.sleep(0.01)
            return not self.engine.busy

        return self.loop.run_until_complete(wait())

    def candidate(self, request: g.GenerateContentRequest, **kwargs: Any) -> g.Candidate:
        """The one candidate of a non-streamed answer."""
        [response] = self.chunks(request, **kwargs)
        assert response.candidates is not None
        return response.candidates[0]

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.aclose())
        self.loop.close()


@pytest.fixture(scope="session")
def local() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.close()


def user(text: str) -> g.Content:
    return g.Content(role="user", parts=[g.Part(text=text)])


def text_of(candidate: g.Candidate) -> str:
    assert candidate.content is not None
    return "".join(p.text or "" for p in candidate.content.parts)


def calls_of(candidate: g.Candidate) -> list[g.FunctionCall]:
    assert candidate.content is not None
    return [p.function_call for p in candidate.content.parts if p.function_call is not None]
