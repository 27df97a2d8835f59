"""Malformed requests (the README's rules): each gets the right 4xx and an OpenAI-style error
naming the field, never reaches the engine, and the next good request is answered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.front.conftest import AUTH, ROUTE, body
from tests.front.fake import MODEL, FakeEngine

M = [{"role": "user", "content": "hi"}]
ok = body

# (name, raw body or JSON value, status, param)
CASES: list[tuple[str, object, int, str | None]] = [
    ("not json", b"{nope", 400, None),
    ("empty body", b"", 400, None),
    ("json array", [1, 2], 400, None),
    ("json string", "hello", 400, None),
    ("missing messages", {"model": MODEL}, 400, "messages"),
    ("empty messages", {"model": MODEL, "messages": []}, 400, "messages"),
    ("messages not a list", {"model": MODEL, "messages": "hi"}, 400, "messages"),
    ("message not an object", {"model": MODEL, "messages": ["hi"]}, 400, "messages[0]"),
    ("unknown role", {"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    ("missing role", {"model": MODEL, "messages": [{"content": "x"}]}, 400, "messages[0].role"),
    ("missing content", {"model": MODEL, "messages": [{"role": "user"}]}, 400, "messages[0].content"),
    ("content a number", {"model": MODEL, "messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    (
        "third message bad",
        {"model": MODEL, "messages": [*M, {"role": "assistant", "content": "a"}, {"role": "user", "content": {}}]},
        400,
        "messages[2].content",
    ),
    (
        "part without type",
        {"model": MODEL, "messages": [{"role": "user", "content": [{"text": "x"}]}]},
        400,
        "messages[0].content[0].type",
    ),
    (
        "unknown part type",
        {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]},
        400,
        "messages[0].content[0].type",
    ),
    (
        "text part text not string",
        {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
        400,
        "messages[0].content[0].text",
    ),
    (
        "tool message without id",
        {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]},
        400,
        "messages[0].tool_call_id",
    ),
    ("only a system message", {"model": MODEL, "messages": [{"role": "system", "content": "x"}]}, 400, "messages"),
    ("model not a string", {"model": 42, "messages": M}, 400, "model"),
    ("missing model on openapi route", {"messages": M}, 400, "model"),
    ("empty model on openapi route", {"model": "", "messages": M}, 400, "model"),
    ("unknown model", {"model": "nope", "messages": M}, 404, "model"),
    ("temperature too high", ok(temperature=2.5), 400, "temperature"),
    ("temperature negative", ok(temperature=-0.1), 400, "temperature"),
    ("temperature a string", ok(temperature="hot"), 400, "temperature"),
    ("top_p above 1", ok(top_p=1.5), 400, "top_p"),
    ("frequency_penalty below -2", ok(frequency_penalty=-3), 400, "frequency_penalty"),
    ("presence_penalty above 2", ok(presence_penalty=2.1), 400, "presence_penalty"),
    ("n zero", ok(n=0), 400, "n"),
    ("n a float", ok(n=1.5), 400, "n"),
    ("max_tokens zero", ok(max_tokens=0), 400, "max_tokens"),
    ("max_completion_tokens negative", ok(max_completion_tokens=-5), 400, "max_completion_tokens"),
    ("five stop strings", ok(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    ("stop a number", ok(stop=3), 400, "stop"),
    ("stream not a bool", ok(stream="yes"), 400, "stream"),
    ("stream_options without stream", ok(stream_options={"include_usage": True}), 400, "stream_options"),
    ("seed a string", ok(seed="abc"), 400, "seed"),
    ("bad tool_choice", ok(tool_choice="sometimes"), 400, "tool_choice"),
    ("bad response_format type", ok(response_format={"type": "yaml"}), 400, "response_format.type"),
    ("top_logprobs too high", ok(top_logprobs=50), 400, "top_logprobs"),
    (
        "reasoning_effort with thinking_config",
        ok(reasoning_effort="low", extra_body={"google": {"thinking_config": {"thinking_budget": 10}}}),
        400,
        None,
    ),
]


@pytest.mark.parametrize(("name", "payload", "status", "param"), CASES, ids=[c[0] for c in CASES])
async def test_bad_request(
    http: httpx.AsyncClient, engine: FakeEngine, name: str, payload: object, status: int, param: str | None
) -> None:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = await http.post(ROUTE + "/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param or param is None, error
    assert r.headers["x-should-retry"] == "false"
    assert engine.calls == [], "a bad request never reaches the engine"
    good = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=ok())
    assert good.status_code == 200, good.text


async def test_unknown_endpoint_is_404(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/projects/p/locations/l/endpoints/nope/chat/completions", headers=AUTH, json=body())
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "endpoint_not_found"


async def test_endpoint_route_serves_its_model_under_any_label(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    path = "/v1/projects/p/locations/l/endpoints/fake-ep/chat/completions"
    for label, echoed in ((None, MODEL), ("my-label", "my-label")):
        payload = body() if label is None else body(model=label)
        if label is None:
            del payload["model"]
        r = await http.post(path, headers=AUTH, json=payload)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == echoed and engine.last.model == MODEL


async def test_wrong_method_unknown_route_and_version(http: httpx.AsyncClient) -> None:
    r = await http.get("/v1/chat/completions", headers=AUTH)
    assert r.status_code == 405 and r.json()["error"]["message"]
    r = await http.post("/v1/nothing-here", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = await http.post("/v2/projects/p/locations/l/endpoints/openapi/chat/completions", headers=AUTH, json=body())
    assert r.status_code == 404


async def test_wrong_content_type_is_415(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    r = await http.post(
        "/v1/chat/completions", headers={**AUTH, "Content-Type": "text/plain"}, content=json.dumps(body())
    )
    assert r.status_code == 415
    assert "application/json" in r.json()["error"]["message"]
    assert engine.calls == []


async def test_oversized_body_is_413(http: httpx.AsyncClient, app: Starlette) -> None:
    limit = app.state.chatgate.settings.server.max_body_bytes
    big = body(messages=[{"role": "user", "content": "x" * (limit + 10)}])
    r = await http.post("/v1/chat/completions", headers=AUTH, json=big)
    assert r.status_code == 413
    # ... and without a Content-Length (a chunked upload) too.
    payload = json.dumps(big).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    r = await http.post("/v1/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=pieces())
    assert r.status_code == 413
