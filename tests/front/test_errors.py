"""Errors before the first byte keep their HTTP status, streaming or not; a client that goes
away stops the engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import openai
import pytest
from starlette.applications import Starlette

from chatgate.errors import (
    ContextLengthExceeded,
    RateLimited,
    Unsupported,
    UpstreamTimeout,
)
from tests.asgi import StreamingTransport
from tests.front.conftest import AUTH, ROUTE, body
from tests.front.fake import MODEL, Fail, FakeEngine, Hang, Text

BEFORE = [
    (RateLimited("busy; retry later", retry_after=3), 429, "rate_limit_exceeded"),
    (ContextLengthExceeded("the prompt does not fit", param="messages"), 400, "context_length_exceeded"),
    (Unsupported("image input is not supported by this model", param="messages[0].content"), 400, None),
    (UpstreamTimeout("Gemini did not answer in time"), 504, "upstream_timeout"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("error", "status", "code"), BEFORE, ids=[type(e[0]).__name__ for e in BEFORE])
async def test_error_before_the_first_chunk_keeps_its_status(
    http: httpx.AsyncClient, engine: FakeEngine, stream: bool, error: Exception, status: int, code: str | None
) -> None:
    engine.script = [Fail(error), Text("never sent")]
    r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(stream=stream))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    got = r.json()["error"]
    assert got["message"] == str(error.args[0]) and set(got) >= {"message", "type", "param", "code"}
    if code is not None:
        assert got["code"] == code
    if status == 429:
        assert int(r.headers["retry-after"]) == 3
    else:
        assert "retry-after" not in r.headers
    # A deterministic refusal tells the SDK not to retry; a 429 or a 5xx does not.
    assert (r.headers.get("x-should-retry") == "false") == (status in (400,))


async def test_sdk_raises_the_typed_error(client: openai.AsyncOpenAI, engine: FakeEngine) -> None:
    engine.script = [Fail(RateLimited("busy", retry_after=1))]
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
    engine.script = [Fail(ContextLengthExceeded("too long"))]
    with pytest.raises(openai.BadRequestError) as raised:
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "context_length_exceeded"


async def test_an_engine_that_ends_at_once_is_still_a_valid_stream(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    engine.script = []
    r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(stream=True))
    assert r.status_code == 200
    assert r.text.endswith("data: [DONE]\n\n")


# --- client disconnects -----------------------------------------------------------------------


async def wait_for(condition: Callable[[], object], what: str) -> None:
    """Let the event loop run until ``condition()`` holds (a bound on loop turns, not a clock)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def test_disconnect_mid_stream_closes_the_engine(app: Starlette, engine: FakeEngine) -> None:
    engine.script = [Text("first"), Hang()]
    async with (
        httpx.AsyncClient(transport=StreamingTransport(app), base_url="http://chatgate") as http,
        http.stream("POST", ROUTE + "/chat/completions", headers=AUTH, json=body(stream=True)) as r,
    ):
        assert r.status_code == 200
        first = await anext(r.aiter_lines())
        assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["content"] == "first"
        await engine.last.hanging.wait()
        assert not engine.last.closed
    # Leaving the block closed the response: the client went away.
    await wait_for(lambda: engine.last.closed, "the engine's iterator was closed")
    assert not engine.busy


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_before_the_first_chunk_closes_the_engine(
    app: Starlette, engine: FakeEngine, stream: bool
) -> None:
    engine.script = [Hang()]
    async with httpx.AsyncClient(transport=StreamingTransport(app), base_url="http://chatgate") as http:
        request = asyncio.ensure_future(http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(stream=stream)))
        await wait_for(lambda: engine.calls and engine.last.hanging.is_set(), "the engine started")
        request.cancel()  # the client gives up before any answer
        with pytest.raises(asyncio.CancelledError):
            await request
    await wait_for(lambda: engine.last.closed, "the engine's iterator was closed")
    assert engine.last.stream is stream
    assert len(engine.calls) == 1


async def test_metrics_show_the_aborted_request(app: Starlette, engine: FakeEngine, http: httpx.AsyncClient) -> None:
    engine.script = [Hang()]
    async with httpx.AsyncClient(transport=StreamingTransport(app), base_url="http://chatgate") as slow:
        request = asyncio.ensure_future(slow.post(ROUTE + "/chat/completions", headers=AUTH, json=body()))
        await wait_for(lambda: engine.calls and engine.last.hanging.is_set(), "the engine started")
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    metrics = (await http.get("/metrics")).text
    assert 'chatgate_requests_total{route="chat_completions",status="499"} 1.0' in metrics
