"""Google's own SDK (``google-genai``), unchanged but for the base URL, against a live chatgate
serving the embedded model: Vertex mode (credentials carrying a ``chatgate token``) and API-key
mode. Every response the SDK receives is checked against Vertex's discovery document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials

from tests.conftest import MODEL, PROJECT
from tests.live import LiveServer
from tests.native.conftest import SCHEMAS, google_error, stream_elements, validate

pytestmark = pytest.mark.model

KEY = "static-key"
PROMPT = "Say hello in one short sentence."


def _checked(response: httpx.Response) -> None:
    response.read()
    if response.status_code >= 400:
        google_error(response.json())
        return
    method = response.request.url.path.rpartition(":")[2]
    if method == "streamGenerateContent":
        for element in stream_elements(response):
            validate(element, method)
    elif method in SCHEMAS:
        validate(response.json(), method)


@pytest.fixture(scope="module")
def checked_http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=300, event_hooks={"response": [_checked]}) as http:
        yield http


@pytest.fixture(params=["vertex", "api-key"])
def client(request: pytest.FixtureRequest, live: LiveServer, token: str, checked_http: httpx.Client) -> genai.Client:
    options = types.HttpOptions(base_url=live.url, httpx_client=checked_http)
    if request.param == "vertex":
        return genai.Client(
            vertexai=True,
            project=PROJECT,
            location="us-central1",
            credentials=Credentials(token=token),
            http_options=options,
        )
    return genai.Client(api_key=KEY, http_options=options)


def test_generate_content(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(max_output_tokens=16, temperature=0)
    )
    assert response.text and response.text.strip()
    assert response.candidates and response.candidates[0].finish_reason in (
        types.FinishReason.STOP,
        types.FinishReason.MAX_TOKENS,
    )
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert 1 <= usage.candidates_token_count <= 16
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == MODEL and response.response_id


def test_generation_config_is_honoured(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        system_instruction="You only ever answer with the word banana.",
        max_output_tokens=2,
        temperature=0.7,
        top_p=0.9,
        top_k=3,
        seed=11,
        candidate_count=2,
    )
    first = client.models.generate_content(model=MODEL, contents="Name a fruit.", config=config)
    again = client.models.generate_content(model=MODEL, contents="Name a fruit.", config=config)
    assert first.candidates and len(first.candidates) == 2
    assert all(c.finish_reason == types.FinishReason.MAX_TOKENS for c in first.candidates)
    assert [c.content.parts[0].text for c in first.candidates if c.content and c.content.parts] == [
        c.content.parts[0].text for c in again.candidates or [] if c.content and c.content.parts
    ]  # the same seed, the same answers


def test_stop_sequences(client: genai.Client) -> None:
    config = types.GenerateContentConfig(temperature=0, max_output_tokens=40, stop_sequences=["\n", " "])
    response = client.models.generate_content(model=MODEL, contents="Write a long poem.", config=config)
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    assert " " not in (response.text or "").strip()


def test_generate_content_stream(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(max_output_tokens=16, temperature=0)
        )
    )
    texts = [chunk.text for chunk in chunks if chunk.text]
    assert len(texts) > 1 and "".join(texts).strip()  # token by token
    assert len({chunk.response_id for chunk in chunks}) == 1
    reasons = [c.finish_reason for chunk in chunks for c in chunk.candidates or [] if c.finish_reason]
    assert len(reasons) == 1
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata.candidates_token_count


def test_count_tokens_is_the_prompt_generate_content_reads(client: genai.Client) -> None:
    counted = client.models.count_tokens(model=MODEL, contents=PROMPT)
    answered = client.models.generate_content(
        model=MODEL, contents=PROMPT, config=types.GenerateContentConfig(max_output_tokens=1)
    )
    assert answered.usage_metadata is not None
    assert counted.total_tokens == answered.usage_metadata.prompt_token_count
    longer = client.models.count_tokens(model=MODEL, contents=PROMPT + " And then say goodbye.")
    assert longer.total_tokens is not None and counted.total_tokens is not None
    assert longer.total_tokens > counted.total_tokens


def test_chat_carries_its_history(client: genai.Client) -> None:
    chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(max_output_tokens=12, temperature=0))
    first = chat.send_message("My name is Ada.")
    second = chat.send_message("What is my name?")
    history = chat.get_history()
    assert [c.role for c in history] == ["user", "model", "user", "model"]
    assert first.usage_metadata and second.usage_metadata
    assert first.usage_metadata.total_token_count and second.usage_metadata.prompt_token_count
    # The second prompt holds the whole first exchange.
    assert second.usage_metadata.prompt_token_count > first.usage_metadata.total_token_count


WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}, required=["city"]
    ),
)


def test_function_calling_and_the_answer_to_a_call(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
        temperature=0,
    )
    question = types.Content(role="user", parts=[types.Part(text="What is the weather in Paris?")])
    response = client.models.generate_content(model=MODEL, contents=[question], config=config)
    calls = response.function_calls
    assert calls and calls[0].name == "get_weather" and isinstance((calls[0].args or {}).get("city"), str)
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    # The call's result, in the next turn: the model answers in text (mode NONE).
    call_turn = response.candidates[0].content
    assert call_turn is not None
    result = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"forecast": "sunny, 25 C"})],
    )
    answer = client.models.generate_content(
        model=MODEL,
        contents=[question, call_turn, result],
        config=config.model_copy(
            update={
                "tool_config": types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE")),
                "max_output_tokens": 24,
            }
        ),
    )
    assert answer.text and answer.text.strip() and not answer.function_calls


def test_automatic_function_calling(client: genai.Client) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> dict[str, Any]:
        """The weather in a city."""
        seen.append(city)
        return {"forecast": "sunny"}

    config = types.GenerateContentConfig(
        tools=[get_weather],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(maximum_remote_calls=2),
        temperature=0,
    )
    response = client.models.generate_content(model=MODEL, contents="What is the weather in Paris?", config=config)
    assert len(seen) == 1 and seen[0]  # the SDK ran the function with the model's arguments
    history = response.automatic_function_calling_history or []
    responses = [p.function_response for c in history for p in c.parts or [] if p.function_response]
    assert (
        responses and responses[0].name == "get_weather" and responses[0].response == {"result": {"forecast": "sunny"}}
    )


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int


def test_response_schema_parsed_by_the_sdk(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL,
        contents="Describe Paris.",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=City, temperature=0, max_output_tokens=200
        ),
    )
    assert isinstance(response.parsed, City)  # valid by construction: the schema's grammar
    assert json.loads(response.text or "") == response.parsed.model_dump()


def test_response_json_schema(client: genai.Client) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    response = client.models.generate_content(
        model=MODEL,
        contents="Is the sky blue?",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema),
    )
    assert isinstance(json.loads(response.text or "")["ok"], bool)


def test_models_list_and_get(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert any(name and name.endswith("smollm2-135m-instruct") for name in names), names
    model = client.models.get(model=MODEL)
    assert model.name and model.name.endswith("smollm2-135m-instruct")


def test_errors_are_the_sdks_own(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="acme/no-such-model", contents="hi")
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents="hi", config=types.GenerateContentConfig(temperature=5))
    assert raised.value.code == 400 and "generationConfig.temperature" in (raised.value.message or "")


def test_an_unknown_cached_content_is_not_found_on_the_local_model(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(
            model=MODEL, contents="hi", config=types.GenerateContentConfig(cached_content="cachedContents/123")
        )
    assert raised.value.code == 404 and "cached content" in (raised.value.message or "")


def test_wrong_credentials(live: LiveServer) -> None:
    client = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=live.url))
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents="hi")
    assert raised.value.code == 401 and raised.value.status == "UNAUTHENTICATED"
