"""The OpenAI route naming a local cache: the engine gets the cache's prefix, the client the
cached token count."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.caches.conftest import CACHES, PROJECT, Clock, cache_body
from tests.front.fake import MODEL, FakeEngine, Finish, Text, Usage

ROUTE = f"/v1/projects/{PROJECT}/locations/us-central1/endpoints/openapi/chat/completions"
SCRIPT = [Text("From the manual."), Finish(), Usage(50, 4, cached=42)]


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(SCRIPT)


async def _cache(http: httpx.AsyncClient, **fields: Any) -> str:
    response = await http.post(CACHES, json=cache_body(**fields))
    assert response.status_code == 200, response.text
    name: str = response.json()["name"]
    return name


def chat(cache: str, **fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "What does it say?"}],
        "extra_body": {"google": {"cached_content": cache}},
        **fields,
    }


async def test_the_engine_gets_the_cache_prefix(
    http: httpx.AsyncClient, openai_http: httpx.AsyncClient, engine: FakeEngine
) -> None:
    name = await _cache(http, toolConfig={"functionCallingConfig": {"mode": "NONE"}})
    response = await openai_http.post(ROUTE, json=chat(name))
    assert response.status_code == 200, response.text
    request = engine.last.request
    assert [(c.role, c.parts[0].text) for c in request.contents] == [
        ("user", "The manual: ..."),
        ("user", "What does it say?"),
    ]
    assert request.system_instruction is not None
    assert request.system_instruction.parts[0].text == "You answer from the manual."
    assert request.tool_config is not None and request.tool_config.function_calling_config is not None
    assert request.cached_content is None  # consumed: the local engine never sees a cache name
    assert response.json()["usage"]["prompt_tokens_details"] == {"cached_tokens": 42}


async def test_cached_tokens_in_the_stream_usage(http: httpx.AsyncClient, openai_http: httpx.AsyncClient) -> None:
    name = await _cache(http)
    response = await openai_http.post(ROUTE, json=chat(name, stream=True, stream_options={"include_usage": True}))
    events = [json.loads(f.removeprefix("data: ")) for f in response.text.split("\n\n") if f.startswith("data: {")]
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 42}


async def test_short_cache_name_and_gemini_api_name(http: httpx.AsyncClient, openai_http: httpx.AsyncClient) -> None:
    name = await _cache(http)
    short = "cachedContents/" + name.rpartition("/")[2]
    assert (await openai_http.post(ROUTE, json=chat(short))).status_code == 200


async def test_system_message_with_a_cache_is_a_400(http: httpx.AsyncClient, openai_http: httpx.AsyncClient) -> None:
    name = await _cache(http)
    body = chat(name)
    body["messages"].insert(0, {"role": "system", "content": "Be brief."})
    response = await openai_http.post(ROUTE, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    response = await openai_http.post(ROUTE, json=chat(name, tools=tools))
    assert response.status_code == 400 and response.json()["error"]["param"] == "tools"


async def test_unknown_expired_or_foreign_cache_is_a_404(
    http: httpx.AsyncClient, openai_http: httpx.AsyncClient, engine: FakeEngine, clock: Clock
) -> None:
    name = await _cache(http, ttl="10s")
    foreign = name.replace(f"projects/{PROJECT}/", "projects/other/")
    for cache in ("cachedContents/nope", foreign, "not a cache name"):
        response = await openai_http.post(ROUTE, json=chat(cache))
        assert response.status_code == 404, cache
        assert response.json()["error"]["param"] == "extra_body.google.cached_content"
    clock.now += 10
    assert (await openai_http.post(ROUTE, json=chat(name))).status_code == 404
    assert engine.calls == []


async def test_a_cache_for_another_model_is_a_400(http: httpx.AsyncClient, openai_http: httpx.AsyncClient) -> None:
    name = await _cache(http)
    response = await openai_http.post(ROUTE, json=chat(name, model="fake/model-b"))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "extra_body.google.cached_content"


async def test_the_local_endpoint_route_takes_a_cache_too(
    http: httpx.AsyncClient, openai_http: httpx.AsyncClient, engine: FakeEngine
) -> None:
    name = await _cache(http)
    route = f"/v1/projects/{PROJECT}/locations/us-central1/endpoints/fake-ep/chat/completions"
    body = chat(name)
    del body["model"]
    response = await openai_http.post(route, json=body)
    assert response.status_code == 200, response.text
    assert len(engine.last.request.contents) == 2
