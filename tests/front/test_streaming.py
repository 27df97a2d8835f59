"""Answers and streams through the whole front, over a scripted engine: OpenAI's shapes and
streaming rules, whatever the engine's chunks look like."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from chatgate.errors import UpstreamUnavailable
from chatgate.protocols.tuning import Tuning
from tests.front.conftest import AUTH, ROUTE, body
from tests.front.fake import MODEL, Call, Fail, FakeEngine, Finish, Text, Usage
from tests.openapi import validate_chunk, validate_completion


def events(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, checking its framing."""
    assert text.endswith("\n\n"), "every event ends with a blank line"
    frames = text.split("\n\n")[:-1]
    assert all(f.startswith("data: ") for f in frames), frames
    return [f.removeprefix("data: ") for f in frames]


async def stream_chunks(http: httpx.AsyncClient, **fields: Any) -> tuple[list[dict[str, Any]], str]:
    """The validated chunks of a stream, and its last event."""
    r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(stream=True, **fields))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    payloads = events(r.text)
    chunks = [json.loads(p) for p in payloads if p != "[DONE]"]
    for chunk in chunks:
        if "error" not in chunk:
            validate_chunk(chunk)
    return chunks, payloads[-1]


async def test_completion_has_openai_shape(client: openai.AsyncOpenAI, engine: FakeEngine) -> None:
    completion = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    validate_completion(completion.model_dump(mode="json", exclude_unset=True))
    assert completion.choices[0].message.content == "Hello there."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 2)
    assert engine.last.model == MODEL and engine.last.stream is False


async def test_completion_body_validates_raw(http: httpx.AsyncClient) -> None:
    r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    validate_completion(r.json())
    assert r.json()["system_fingerprint"] == ""


async def test_stream_rules(http: httpx.AsyncClient) -> None:
    chunks, last = await stream_chunks(http)
    assert last == "[DONE]"
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant"
    assert all("role" not in d for d in deltas[1:]), "role only on the first chunk"
    assert "".join(d.get("content") or "" for d in deltas) == "Hello there."
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]
    assert reasons == ["stop"]
    assert all("usage" not in c for c in chunks), "no usage field unless asked for"


async def test_stream_include_usage(http: httpx.AsyncClient) -> None:
    chunks, last = await stream_chunks(http, stream_options={"include_usage": True})
    assert last == "[DONE]"
    *body_chunks, usage = chunks
    assert (
        usage["choices"] == []
        and usage["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7} | usage["usage"]
    )
    assert all(c["usage"] is None for c in body_chunks)


@pytest.mark.parametrize(
    "engine",
    [
        FakeEngine(
            [
                Text("a", 0),
                Text("b", 1),
                Text("c", 0),
                Finish("STOP", 0),
                Finish("STOP", 0),
                Text("d", 1),
                Finish("MAX_TOKENS", 1),
                Finish("MAX_TOKENS", 1),
                Usage(3, 4),
            ]
        )
    ],
)
async def test_stream_one_role_and_one_finish_reason_per_choice(http: httpx.AsyncClient) -> None:
    chunks, last = await stream_chunks(http, n=2)
    assert last == "[DONE]"
    for index, (text, reason) in enumerate([("ac", "stop"), ("bd", "length")]):
        mine = [choice for c in chunks for choice in c["choices"] if choice["index"] == index]
        assert [("role" in m["delta"]) for m in mine].count(True) == 1 and "role" in mine[0]["delta"]
        assert "".join(m["delta"].get("content") or "" for m in mine) == text
        assert [m["finish_reason"] for m in mine if m["finish_reason"]] == [reason]


@pytest.mark.parametrize(
    "engine", [FakeEngine([Call("get_weather", {"city": "Rome"}), Call("get_time", {}), Finish("STOP"), Usage(9, 9)])]
)
async def test_streamed_tool_calls(client: openai.AsyncOpenAI, engine: FakeEngine) -> None:
    tools: Any = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("get_weather", "get_time")
    ]
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=tools, stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    reasons = []
    async for chunk in stream:
        validate_chunk(chunk.model_dump(mode="json", exclude_unset=True))
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            into = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            into["id"] += call.id or ""
            into["name"] += call.function.name or "" if call.function else ""
            into["arguments"] += call.function.arguments or "" if call.function else ""
        if choice.finish_reason:
            reasons.append(choice.finish_reason)
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Rome"} and json.loads(calls[1]["arguments"]) == {}
    assert all(c["id"] for c in calls.values())
    assert reasons == ["tool_calls"]
    assert engine.last.stream is True and engine.last.parallel_tool_calls is True


async def test_parallel_tool_calls_false_reaches_the_engine(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(tools=tools, parallel_tool_calls=False))
    assert r.status_code == 200, r.text
    assert engine.last.parallel_tool_calls is False


async def test_chatgate_knobs_reach_the_engine(client: openai.AsyncOpenAI, engine: FakeEngine) -> None:
    """``extra_body={"chatgate": ...}`` through the OpenAI SDK (which sends it at the top level)."""
    await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"chatgate": {"loop_control": 1.25, "tool_call_bias": 3}},
    )
    assert engine.last.tuning == Tuning(loop_control=1.25, tool_call_bias=3.0)


async def test_a_bad_chatgate_knob_is_a_400_naming_it(client: openai.AsyncOpenAI, engine: FakeEngine) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"chatgate": {"loop_control": -1}}
        )
    assert caught.value.body["param"] == "chatgate.loop_control"  # type: ignore[index]
    assert not engine.calls


@pytest.mark.parametrize("engine", [FakeEngine([Text("partial"), Fail(UpstreamUnavailable("the model went away"))])])
async def test_error_after_the_stream_started_is_a_final_event(
    http: httpx.AsyncClient, client: openai.AsyncOpenAI
) -> None:
    chunks, last = await stream_chunks(http)
    assert chunks[0]["choices"][0]["delta"]["content"] == "partial"
    error = json.loads(last)["error"]
    assert error["message"] == "the model went away" and error["code"] == "upstream_unavailable"
    assert set(error) >= {"message", "type", "param", "code"}
    assert "[DONE]" not in last
    # The SDK raises it to the caller, after the text it already gave.
    seen = []
    with pytest.raises(openai.APIError, match="the model went away"):
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["partial"]


@pytest.mark.parametrize("engine", [FakeEngine([Text("x"), Fail(RuntimeError("boom"))])])
async def test_a_bug_after_the_stream_started_leaks_nothing(http: httpx.AsyncClient) -> None:
    _, last = await stream_chunks(http)
    error = json.loads(last)["error"]
    assert error["code"] == "internal_error" and "boom" not in last
