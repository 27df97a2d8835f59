"""The official openai SDK against a live chatgate whose Gemini engine reaches the fake
Gemini server: streamed parallel tool calls, ``parse()``, a signature across two turns."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest

from chatgate import config
from chatgate.engines.local.engine import LocalEngine
from tests.gemini.fake import FakeGemini, Reply
from tests.live import LiveServer
from tests.openapi import validate_chunk, validate_completion

MODEL = "google/gemini-3.1-pro-preview"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            },
        },
    }
]


@pytest.fixture(scope="module")
def live(_server: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = config.load(
        None,
        environ={},
        overrides={
            "auth": {"enabled": False, "state_dir": str(tmp_path_factory.mktemp("state"))},
            "gemini": {
                "project": "proj",
                "location": "global",
                "access_token": "tok",
                "base_url": _server.url,
                "max_retries": 0,
            },
        },
    )
    with LiveServer(settings, local=LocalEngine([])) as server:
        yield server


@pytest.fixture
def client(live: LiveServer, fake: FakeGemini) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=live.url + "/v1beta1/projects/proj/locations/global/endpoints/openapi", api_key="unused", max_retries=0
    )


def _fc(**call: Any) -> dict[str, Any]:
    return {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"functionCall": call}]}}]}


def test_stream_helper_assembles_parallel_streamed_tool_calls(client: openai.OpenAI, fake: FakeGemini) -> None:
    first = _fc(name="get_weather", willContinue=True)
    first["candidates"][0]["content"]["parts"][0]["thoughtSignature"] = "U0lHQQ=="
    fake.sse(
        first,
        _fc(
            partialArgs=[{"jsonPath": "$.location", "stringValue": "Boston, MA", "willContinue": True}],
            willContinue=True,
        ),
        _fc(partialArgs=[{"jsonPath": "$.location", "stringValue": ""}], willContinue=True),
        _fc(partialArgs=[{"jsonPath": "$.unit", "stringValue": "celsius"}], willContinue=True),
        _fc(),
        _fc(name="get_weather", willContinue=True),
        _fc(partialArgs=[{"jsonPath": "$.location", "stringValue": "San Francisco\nCA"}], willContinue=True),
        {
            **_fc(),
            "usageMetadata": {
                "promptTokenCount": 27,
                "candidatesTokenCount": 45,
                "thoughtsTokenCount": 504,
                "totalTokenCount": 576,
                "trafficType": "PROVISIONED_THROUGHPUT",
            },
        },
    )
    fake.replies[-1].chunks[-1] = (
        fake.replies[-1].chunks[-1].replace(b'"content"', b'"finishReason": "STOP", "content"')
    )
    with client.chat.completions.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "weather in Boston and SF?"}],
        tools=TOOLS,
        extra_body={"extra_body": {"google": {"stream_function_call_arguments": True}}},
        stream_options={"include_usage": True},
    ) as stream:
        for event in stream:
            if event.type == "chunk":
                validate_chunk(event.chunk.model_dump(exclude_unset=True))
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"location": "Boston, MA", "unit": "celsius"},
        {"location": "San Francisco\nCA"},
    ]
    assert len({c.id for c in calls}) == 2
    assert final.usage is not None and final.usage.completion_tokens_details.reasoning_tokens == 504
    sent = fake.seen[0]
    assert (
        sent.path
        == "/v1beta1/projects/proj/locations/global/publishers/google/models/gemini-3.1-pro-preview:streamGenerateContent"
    )
    assert sent.body["toolConfig"]["functionCallingConfig"]["streamFunctionCallArguments"] is True


class Step(pydantic.BaseModel):
    explanation: str
    output: str


class Math(pydantic.BaseModel):
    steps: list[Step]
    final_answer: str


def test_parse_returns_a_parsed_object(client: openai.OpenAI, fake: FakeGemini) -> None:
    answer = {"steps": [{"explanation": "subtract 7", "output": "8x = -30"}], "final_answer": "x = -3.75"}
    fake.reply(
        200,
        {
            "candidates": [
                {
                    "index": 0,
                    "finishReason": "STOP",
                    "content": {"role": "model", "parts": [{"text": json.dumps(answer)}]},
                }
            ],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 20, "totalTokenCount": 30},
        },
    )
    raw = client.chat.completions.with_raw_response.parse(
        model=MODEL, messages=[{"role": "user", "content": "solve 8x + 7 = -23"}], response_format=Math
    )
    validate_completion(json.loads(raw.text))
    completion = raw.parse()
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Math) and parsed.final_answer == "x = -3.75"
    config = fake.seen[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["$defs"]["Step"]["additionalProperties"] is False


def test_thought_signature_survives_a_two_turn_tool_loop(client: openai.OpenAI, fake: FakeGemini) -> None:
    fake.reply(
        200,
        {
            "candidates": [
                {
                    "index": 0,
                    "finishReason": "STOP",
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "Checking.", "thought": True},
                            {
                                "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                                "thoughtSignature": "U2lnbmF0dXJlIEE=",
                            },
                            {"functionCall": {"name": "get_weather", "args": {"location": "London"}}},
                        ],
                    },
                }
            ]
        },
    )
    messages: list[Any] = [{"role": "user", "content": "Paris and London?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    message = first.choices[0].message
    assert message.tool_calls[0].model_extra["extra_content"] == {"google": {"thought_signature": "U2lnbmF0dXJlIEE="}}
    messages.append(message)  # as the OpenAI docs do: the SDK's own message object
    for call, temp in zip(message.tool_calls, ("15C", "12C")):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": temp})
    fake.reply(
        200,
        {
            "candidates": [
                {
                    "index": 0,
                    "finishReason": "STOP",
                    "content": {"role": "model", "parts": [{"text": "Paris 15C, London 12C."}]},
                }
            ]
        },
    )
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "Paris 15C, London 12C."
    history = fake.seen[1].body["contents"]
    assert [c["role"] for c in history] == ["user", "model", "user"]
    model_parts = history[1]["parts"]
    assert model_parts[-2]["functionCall"]["args"] == {"location": "Paris"}
    assert model_parts[-2]["thoughtSignature"] == "U2lnbmF0dXJlIEE="
    assert "thoughtSignature" not in model_parts[-1]
    assert [p["functionResponse"]["response"] for p in history[2]["parts"]] == [{"output": "15C"}, {"output": "12C"}]


def test_google_errors_reach_the_sdk_with_their_status(client: openai.OpenAI, fake: FakeGemini) -> None:
    fake.reply(429, [{"error": {"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED"}}])
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert "Resource exhausted." in err.value.message


def test_a_mid_stream_failure_ends_the_stream_with_an_error(client: openai.OpenAI, fake: FakeGemini) -> None:
    fake.replay("vertexai/streaming-failure-error-mid-stream.txt")
    got = []
    with pytest.raises(openai.APIError) as err:
        for chunk in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            got.append(chunk)
    assert "cancelled" in str(err.value.message).lower()
    assert "".join(c.choices[0].delta.content or "" for c in got if c.choices) == "First Second "


def _text(text: str) -> dict[str, Any]:
    return {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"text": text}]}}]}


def test_events_sent_together_reach_the_sdk_in_order(client: openai.OpenAI, fake: FakeGemini) -> None:
    """Google's events arriving in one packet: every one is still its own OpenAI chunk."""
    events = [_text(f"w{i} ") for i in range(30)]
    events[-1]["candidates"][0]["finishReason"] = "STOP"
    fake.replies.append(
        Reply(
            chunks=[b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)],
            content_type="text/event-stream",
        )
    )
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True)
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == [f"w{i} " for i in range(30)]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_a_client_leaving_mid_stream_closes_the_request_to_google(client: openai.OpenAI, fake: FakeGemini) -> None:
    fake.sse(_text("Hello"), hold=True)
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.content == "Hello"
    stream.close()
    deadline = time.monotonic() + 30
    while fake.disconnects == 0:
        assert time.monotonic() < deadline, "chatgate kept the request to Google open"
        time.sleep(0.01)
