"""Bounded work per request (issue 11, item 2): ``n`` at most 8, ``max_tokens`` within the
context, a deadline on the whole request; and schemas compiled only after admission, stopped
when the client goes away (item 1)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from chatgate import config
from chatgate.engines.local import schema as schemas
from chatgate.engines.local.engine import LocalEngine
from chatgate.engines.local.models import specs
from chatgate.errors import ContextLengthExceeded, RateLimited
from chatgate.front.app import build_app
from chatgate.protocols import gemini as g
from tests.asgi import running
from tests.front.conftest import AUTH, ROUTE, app, asgi_client, body, engine, http, settings, state_path  # noqa: F401  (fixtures)
from tests.front.fake import FakeEngine, Hang, Text
from tests.hardening.test_schema_expansion import multiplying
from tests.upstream.servers import Gateway, Request, Upstream, chunk, send_chunk, sse, start_stream
from tests.upstream.servers import settings as relay_settings

CHAT = ROUTE + "/chat/completions"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


@pytest.fixture
async def slow_app(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Starlette]:
    application = build_app(settings(tmp_path, server={"request_timeout": 0.3}), local=engine)
    async with running(application):
        yield application


# --- n --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [9, 128])
async def test_n_beyond_8_is_a_400_naming_n(http: httpx.AsyncClient, engine: FakeEngine, n: int) -> None:
    error = error_of(await http.post(CHAT, headers=AUTH, json=body(n=n)), 400)
    assert error["param"] == "n"
    assert engine.calls == []


async def test_n_of_8_is_served(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    assert (await http.post(CHAT, headers=AUTH, json=body(n=8))).status_code == 200
    assert engine.last.request.generation_config is not None
    assert engine.last.request.generation_config.candidate_count == 8


# --- the request deadline -------------------------------------------------------------


async def test_a_request_past_the_deadline_is_504_and_stops_the_engine(slow_app: Starlette, engine: FakeEngine) -> None:
    engine.script = [Hang()]
    async with asgi_client(slow_app, base_url="http://chatgate") as http:
        error = error_of(await http.post(CHAT, headers=AUTH, json=body()), 504)
    assert error["code"] == "deadline_exceeded"
    assert engine.last.closed


async def test_a_stream_past_the_deadline_ends_with_an_error_event(slow_app: Starlette, engine: FakeEngine) -> None:
    engine.script = [Text("Hel"), Hang()]
    async with asgi_client(slow_app, base_url="http://chatgate") as http:
        response = await http.post(CHAT, headers=AUTH, json=body(stream=True))
    assert response.status_code == 200
    frames = [f.removeprefix("data: ") for f in response.text.split("\n\n") if f]
    assert json.loads(frames[0])["choices"][0]["delta"]["content"] == "Hel"
    assert json.loads(frames[-1])["error"]["code"] == "deadline_exceeded"
    assert engine.last.closed


async def test_the_default_deadline_is_generous(http: httpx.AsyncClient) -> None:
    assert config.load(None, environ={}).server.request_timeout >= 600
    assert (await http.post(CHAT, headers=AUTH, json=body())).status_code == 200


def test_a_relay_past_the_deadline_is_504_and_a_relayed_stream_ends_with_an_error() -> None:
    async def hold(request: Request, writer: Any) -> None:
        if not request.json().get("stream"):
            await asyncio.Event().wait()  # never answers
        await start_stream(writer)
        await send_chunk(writer, sse(chunk({"content": "Hel"})))
        await asyncio.Event().wait()  # then nothing more

    with (
        Upstream(hold, watch_close=True) as upstream,
        Gateway(
            relay_settings({"ep": {"upstreams": [upstream.url], "timeout": 120}}, server={"request_timeout": 0.5})
        ) as gateway,
    ):
        url = gateway.base("ep") + "/chat/completions"
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        error = error_of(httpx.post(url, json=chat, timeout=30), 504)
        assert error["code"] == "deadline_exceeded"
        streamed = httpx.post(url, json={**chat, "stream": True}, timeout=30)
        assert streamed.status_code == 200
        frames = [f.removeprefix("data: ") for f in streamed.text.split("\n\n") if f]
        assert json.loads(frames[0])["choices"][0]["delta"]["content"] == "Hel"
        assert json.loads(frames[-1])["error"]["code"] == "deadline_exceeded"


# --- the local engine: max_tokens, and schemas after admission --------------------------


class OneSlot:
    """The embedded model with one context and no queue, on its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        settings = config.load(None, environ={}, overrides={"local": {"parallel": 1, "queue_size": 0}})
        self.engine = LocalEngine(specs(settings))
        self.loop.run_until_complete(self.engine.start())
        self.name = self.engine.names()[0]
        self.model = self.engine.model(self.name)

    async def idle(self) -> None:
        """Wait until the context is free again (its thread has stopped); a minute at most."""
        for _ in range(6000):
            if self.model.admission.active == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the context was never released")

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def one_slot() -> Iterator[OneSlot]:
    runner = OneSlot()
    yield runner
    runner.close()


def request(text: str = "Count to a thousand.", **config: Any) -> g.GenerateContentRequest:
    return g.GenerateContentRequest(
        contents=[g.Content(role="user", parts=[g.Part(text=text)])], generation_config=g.GenerationConfig(**config)
    )


def schema_request(schema: Any) -> g.GenerateContentRequest:
    return request(response_mime_type="application/json", response_json_schema=schema, max_output_tokens=4)


@pytest.mark.model
def test_max_tokens_beyond_the_context_is_a_400_naming_it(one_slot: OneSlot) -> None:
    async def ask(max_tokens: int) -> list[g.GenerateContentResponse]:
        await one_slot.idle()  # the context is released just after the answer's last chunk
        chunks = one_slot.engine.generate(one_slot.name, request(max_output_tokens=max_tokens), stream=False)
        return [c async for c in chunks]

    with pytest.raises(ContextLengthExceeded) as err:
        one_slot.loop.run_until_complete(ask(4096))
    assert err.value.param == "max_tokens" and "max_tokens may be at most" in err.value.message
    [answer] = one_slot.loop.run_until_complete(ask(3))
    assert answer.usage_metadata is not None and answer.usage_metadata.candidates_token_count == 3


@pytest.mark.model
def test_a_schema_is_compiled_only_after_admission(one_slot: OneSlot) -> None:
    """With the one context busy and no queue, even a schema that would be refused gets the
    429: nothing was compiled for a request that was not admitted."""

    async def run() -> None:
        await one_slot.idle()
        busy = one_slot.engine.generate(one_slot.name, request(max_output_tokens=2000, temperature=0), stream=True)
        await anext(busy)  # generating: the one slot is held
        try:
            with pytest.raises(RateLimited):
                await anext(one_slot.engine.generate(one_slot.name, schema_request(multiplying(6)), stream=False))
        finally:
            await busy.aclose()  # type: ignore[attr-defined]
            await one_slot.idle()

    one_slot.loop.run_until_complete(run())


@pytest.mark.model
def test_a_schema_compile_stops_when_the_client_goes_away(one_slot: OneSlot, monkeypatch: pytest.MonkeyPatch) -> None:
    """A schema that would unroll for minutes (the budget raised out of the way) runs on the
    slot's thread, not the event loop, and stops soon after the request is cancelled."""
    budget = 50_000_000
    monkeypatch.setattr(schemas, "MAX_EXPANDED_NODES", budget)
    monkeypatch.setattr(schemas.bounded, "__defaults__", (schemas.MAX_DEPTH, budget, 10_000))
    started = threading.Event()
    visited = 0
    threads: set[str] = set()

    class Counting(dict):  # type: ignore[type-arg]
        def items(self):  # type: ignore[no-untyped-def]
            nonlocal visited
            visited += 1
            threads.add(threading.current_thread().name)
            started.set()
            return super().items()

    schema = multiplying(12)
    schema["$defs"] = {k: Counting(v) for k, v in schema["$defs"].items()}

    async def run() -> None:
        await one_slot.idle()
        first = asyncio.ensure_future(
            anext(one_slot.engine.generate(one_slot.name, schema_request(schema), stream=True))
        )
        await asyncio.to_thread(started.wait, 60)
        assert started.is_set()
        first.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await first
        await one_slot.idle()  # the slot comes back when the thread has stopped
        stopped_at = visited
        await asyncio.sleep(0.2)
        assert visited == stopped_at < budget

    one_slot.loop.run_until_complete(run())
    assert threads and all(name.startswith("llama-") for name in threads)
