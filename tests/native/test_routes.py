"""The native routes over the fake engine: which URL reaches which model, what goes to the
engine, and what comes back (a response as Google shapes it, a stream as an array or SSE)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chatgate.front.app import build_app
from tests.asgi import running
from tests.front.conftest import AUTH, KEY, settings
from tests.front.fake import MODEL, OTHER, Call, FakeEngine, Finish, Text, Usage
from tests.gemini import discovery
from tests.native.conftest import API, VERTEX, hello, stream_elements

# How the google-genai SDK names fake/model-a: Vertex (`publisher/id`), the Gemini API.
VERTEX_MODEL = f"{VERTEX}/fake/models/model-a"
API_MODEL = f"{API}/{MODEL}"


async def test_generate_content_answers_google_shaped(native: httpx.AsyncClient, engine: FakeEngine) -> None:
    r = await native.post(VERTEX_MODEL + ":generateContent", headers=AUTH, json=hello())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["candidates"] == [
        {"index": 0, "content": {"role": "model", "parts": [{"text": "Hello there."}]}, "finishReason": "STOP"}
    ]
    assert body["usageMetadata"] == {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}
    assert body["modelVersion"] == MODEL and body["responseId"] and body["createTime"].endswith("Z")
    assert r.headers["x-chatgate-model"] == MODEL
    assert engine.last.model == MODEL and engine.last.stream is False
    assert engine.last.request.contents[0].parts[0].text == "hi"


async def test_the_request_reaches_the_engine_as_sent(native: httpx.AsyncClient, engine: FakeEngine) -> None:
    config = {"temperature": 0.3, "topK": 5, "candidateCount": 2, "seed": 7, "stopSequences": ["x"]}
    tools = [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT"}}]}]
    sent = hello(
        systemInstruction={"parts": [{"text": "be brief"}]},
        generationConfig=config,
        tools=tools,
        toolConfig={"functionCallingConfig": {"mode": "ANY"}},
    )
    assert (await native.post(VERTEX_MODEL + ":generateContent", headers=AUTH, json=sent)).status_code == 200
    request = engine.last.request
    assert request.system_instruction is not None and request.system_instruction.parts[0].text == "be brief"
    assert request.generation_config is not None
    assert (request.generation_config.top_k, request.generation_config.candidate_count) == (5, 2)
    assert request.tools is not None and request.tools[0].function_declarations is not None
    assert request.tool_config is not None and request.tool_config.function_calling_config is not None
    assert request.tool_config.function_calling_config.mode == "ANY"


@pytest.mark.parametrize(
    "path",
    [
        f"{VERTEX}/fake/models/model-a",  # publisher/id
        f"{VERTEX}/FAKE/models/MODEL-A",  # names are case-insensitive, as the OpenAI route's
        "/v1/publishers/fake/models/model-a",  # express mode: no project in the URL
        f"{API}/fake/model-a",  # the Gemini API: the name as it is
        f"/v1/models/{MODEL}",
    ],
)
async def test_every_url_form_reaches_the_local_model(native: httpx.AsyncClient, engine: FakeEngine, path: str) -> None:
    r = await native.post(path + ":generateContent", headers=AUTH, json=hello())
    assert r.status_code == 200, r.text
    assert engine.last.model == MODEL


async def test_a_bare_name_under_google_reaches_a_local_alias(state_path: Path) -> None:
    engine = FakeEngine(models=["tiny"])
    application = build_app(settings(state_path), local=engine)
    async with running(application):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(application), base_url="http://c") as http:
            for path in (f"{VERTEX}/google/models/tiny", f"{API}/tiny"):
                r = await http.post(path + ":generateContent", headers=AUTH, json=hello())
                assert r.status_code == 200, r.text
                assert engine.last.model == "tiny"


@pytest.mark.parametrize("sse", [False, True])
async def test_stream_is_a_json_array_or_sse(native: httpx.AsyncClient, engine: FakeEngine, sse: bool) -> None:
    engine.script = [Text("He"), Text("llo"), Finish(), Usage(3, 2)]
    url = VERTEX_MODEL + ":streamGenerateContent" + ("?alt=sse" if sse else "")
    r = await native.post(url, headers=AUTH, json=hello())
    assert r.status_code == 200, r.text
    expected = "text/event-stream" if sse else "application/json"
    assert r.headers["content-type"].startswith(expected)
    elements = stream_elements(r)
    texts = [
        p["text"] for e in elements for c in e.get("candidates", []) for p in c.get("content", {}).get("parts", [])
    ]
    assert texts == ["He", "llo"]
    assert [c["finishReason"] for e in elements for c in e.get("candidates", []) if "finishReason" in c] == ["STOP"]
    assert elements[-1]["usageMetadata"]["totalTokenCount"] == 5
    assert len({e["responseId"] for e in elements}) == 1  # one answer, one id
    assert engine.last.stream is True


async def test_a_stream_that_ends_at_once_is_an_empty_array(native: httpx.AsyncClient, engine: FakeEngine) -> None:
    engine.script = []
    r = await native.post(VERTEX_MODEL + ":streamGenerateContent", headers=AUTH, json=hello())
    assert r.status_code == 200 and r.json() == []


async def test_function_calls_come_back_as_parts(native: httpx.AsyncClient, engine: FakeEngine) -> None:
    engine.script = [Call("get_weather", {"city": "Paris"}), Finish(), Usage(4, 6)]
    r = await native.post(API_MODEL + ":generateContent", headers={"x-goog-api-key": KEY}, json=hello())
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    ]


async def test_count_tokens_counts_on_the_engine(native: httpx.AsyncClient, engine: FakeEngine) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "one two three"}]}],
        "systemInstruction": {"parts": [{"text": "four five"}]},
    }
    r = await native.post(VERTEX_MODEL + ":countTokens", headers=AUTH, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"totalTokens": 5}
    assert engine.counted[-1][0] == MODEL
    assert not engine.calls  # counting generates nothing
    # The Gemini API's form: the whole request under generateContentRequest.
    wrapped = {"generateContentRequest": {"model": f"models/{MODEL}", **body}}
    r = await native.post(API_MODEL + ":countTokens", params={"key": KEY}, json=wrapped)
    assert r.status_code == 200 and r.json() == {"totalTokens": 5}
    r = await native.post(API_MODEL + ":countTokens", params={"key": KEY}, json={"contents": []})
    assert r.status_code == 200 and r.json() == {"totalTokens": 0}


async def test_model_listings_and_lookups(native: httpx.AsyncClient) -> None:
    r = await native.get(f"{VERTEX}/google/models", headers=AUTH)
    assert r.status_code == 200
    names = [m["name"] for m in r.json()["publisherModels"]]
    assert names == ["publishers/fake/models/model-a", "publishers/fake/models/model-b"]
    discovery.validate(r.json(), "GoogleCloudAiplatformV1beta1ListPublisherModelsResponse")
    r = await native.get(f"{VERTEX}/fake/models/model-b", headers=AUTH)
    assert r.status_code == 200 and r.json()["name"] == "publishers/fake/models/model-b"
    discovery.validate(r.json(), "GoogleCloudAiplatformV1beta1PublisherModel")
    r = await native.get("/v1beta1/publishers/google/models", headers=AUTH)  # as the SDK asks
    assert r.status_code == 200 and len(r.json()["publisherModels"]) == 2
    r = await native.get(API, params={"key": KEY})
    assert [m["name"] for m in r.json()["models"]] == [f"models/{MODEL}", f"models/{OTHER}"]
    assert "generateContent" in r.json()["models"][0]["supportedGenerationMethods"]
    r = await native.get(f"{API}/{OTHER}", headers={"x-goog-api-key": KEY})
    assert r.status_code == 200 and r.json()["name"] == f"models/{OTHER}"


async def test_get_v1_models_answers_each_client_in_its_shape(native: httpx.AsyncClient) -> None:
    # google-genai in API-key mode lists at /v1/models, OpenAI's listing route.
    google = {"x-goog-api-key": KEY, "x-goog-api-client": "google-genai-sdk/3.6.1 gl-python/3.11"}
    r = await native.get("/v1/models", headers=google)
    assert [m["name"] for m in r.json()["models"]] == [f"models/{MODEL}", f"models/{OTHER}"]
    for openai_client in (AUTH, {"x-goog-api-key": KEY}):
        r = await native.get("/v1/models", headers=openai_client)
        assert r.json()["object"] == "list" and [m["id"] for m in r.json()["data"]] == [MODEL, OTHER]
    r = await native.get(f"/v1/models/{MODEL}", params={"key": KEY})
    assert r.status_code == 200 and r.json()["name"] == f"models/{MODEL}"


async def test_fields_may_be_spelled_as_in_the_proto(native: httpx.AsyncClient, engine: FakeEngine) -> None:
    """Google reads snake_case field names as protobuf's JSON does (its SDK sends some);
    free-form members keep their keys."""
    declaration = {"name": "f", "parameters_json_schema": {"type": "object", "properties": {"first_name": {}}}}
    sent = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "generation_config": {"max_output_tokens": 7, "topK": 2},
        "tools": [{"function_declarations": [declaration]}],
    }
    r = await native.post(VERTEX_MODEL + ":generateContent", headers=AUTH, json=sent)
    assert r.status_code == 200, r.text
    request = engine.last.request
    assert request.system_instruction is not None and request.system_instruction.parts[0].text == "be brief"
    assert request.generation_config is not None
    assert (request.generation_config.max_output_tokens, request.generation_config.top_k) == (7, 2)
    assert request.tools is not None and request.tools[0].function_declarations is not None
    assert request.tools[0].function_declarations[0].parameters_json_schema == declaration["parameters_json_schema"]
    r = await native.post(
        VERTEX_MODEL + ":generateContent", headers=AUTH, json={**sent, "generation_config": {"temperature": "x"}}
    )
    assert r.status_code == 400 and "generationConfig.temperature" in r.json()["error"]["message"]
