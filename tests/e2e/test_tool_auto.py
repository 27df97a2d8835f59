"""Google's function-calling sample, unchanged but for host and token, against a live chatgate
serving the embedded model: one ``get_current_weather`` tool, ``tool_choice`` absent or
``"auto"``, no temperature, no max_tokens. The client reads ``tool_calls[0]``, runs the
function and sends its result back; the next answer is text, so the agent loop closes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from tests.conftest import MODEL, OPENAPI, make_settings
from tests.live import LiveServer

pytestmark = pytest.mark.model

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA or a zip code e.g. 95616",
                },
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}
QUESTION = {"role": "user", "content": "What is the weather in Boston, MA?"}


@pytest.fixture
def client(live: LiveServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + OPENAPI, api_key=token, max_retries=0)


@pytest.mark.parametrize("choice", [None, "auto"])
def test_the_weather_sample_calls_the_tool_then_answers_in_text(client: openai.OpenAI, choice: str | None) -> None:
    extra = {"tool_choice": choice} if choice else {}
    first = client.chat.completions.create(model=MODEL, messages=[QUESTION], tools=[WEATHER], **extra)  # type: ignore[arg-type]
    choice0 = first.choices[0]
    assert choice0.finish_reason == "tool_calls", choice0.message.content
    call = choice0.message.tool_calls[0]  # type: ignore[index]  # what the sample reads
    assert call.function.name == "get_current_weather"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    jsonschema.validate(args, WEATHER["function"]["parameters"])

    result = {"location": args["location"], "temperature": "22", "unit": "celsius", "description": "Sunny"}
    second = client.chat.completions.create(
        model=MODEL,
        messages=[
            QUESTION,
            choice0.message.model_dump(exclude_unset=True, exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
        ],
        tools=[WEATHER],
        **extra,  # type: ignore[arg-type]
    )
    answer = second.choices[0]
    assert not answer.message.tool_calls
    assert answer.finish_reason in ("stop", "length")
    assert answer.message.content and answer.message.content.strip()


@pytest.mark.parametrize("question", ["Write a haiku about autumn.", "What is 2+2?"])
def test_a_question_no_tool_answers_gets_text(client: openai.OpenAI, question: str) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": question}], tools=[WEATHER], max_tokens=40
    )
    message = completion.choices[0].message
    assert not message.tool_calls
    assert message.content and message.content.strip()


def test_a_stream_starts_the_call_at_once(client: openai.OpenAI) -> None:
    """Streaming: the call's id and name come in the first tool-call delta, no text before."""
    chunks = list(client.chat.completions.create(model=MODEL, messages=[QUESTION], tools=[WEATHER], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert not text.strip()
    assert deltas and deltas[0].id and deltas[0].function and deltas[0].function.name == "get_current_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.index == 0 and d.function)
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])


def test_the_sample_runs_unchanged_against_the_local_fallback(tmp_path: Path) -> None:
    """The issue's setup: Google's sample names a Gemini model; ``[gemini] local_fallback``
    answers it with the embedded model, and ``tool_calls[0]`` is there to read."""
    settings = make_settings(tmp_path, auth={"enabled": False}, gemini={"local_fallback": MODEL})
    with LiveServer(settings) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        completion = client.chat.completions.create(
            model="google/gemini-2.0-flash-001", messages=[QUESTION], tools=[WEATHER], tool_choice="auto"
        )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_current_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])  # type: ignore[union-attr]
