"""Gemini chunks → chat.completion.chunk objects."""

from __future__ import annotations

import json
from typing import Any

from chatgate.translate.request import Rendering
from chatgate.translate.stream import StreamTranslator
from tests.gemini.helpers import assemble
from tests.openapi import validate_chunk
from tests.translate.util import as_json, candidate, response

R = Rendering(model="google/gemini-3.1-pro-preview", stream=True)


def run(bodies: list[dict[str, Any]], rendering: Rendering = R) -> list[dict[str, Any]]:
    translator = StreamTranslator(rendering, completion_id="c1", created=1)
    out = []
    for body in bodies:
        out += translator.feed(response(body))
    out += translator.finish()
    chunks = [as_json(c) for c in out]
    for chunk in chunks:
        validate_chunk(chunk)
        assert chunk["id"] == "c1" and chunk["created"] == 1
    return chunks


def test_role_only_on_the_first_delta_and_finish_once() -> None:
    chunks = run(
        [
            {"candidates": [candidate({"text": "a"}, finish="STOP")]},
            {"candidates": [candidate({"text": "b"}, finish="STOP")]},
        ]
    )
    got = assemble(chunks)
    assert got["roles"] == 1 and got["content"] == "ab" and got["finish_reason"] == "stop"


def test_stream_function_call_arguments_like_the_spec_example() -> None:
    """Gemini's partialArgs → argument fragments; stable indexes; names once."""

    def fc(**call: Any) -> dict[str, Any]:
        return {"candidates": [candidate({"functionCall": call}, finish=None)]}

    chunks = run(
        [
            {
                "candidates": [
                    candidate(
                        {
                            "functionCall": {"name": "get_current_weather", "willContinue": True},
                            "thoughtSignature": "U0lH",
                        },
                        finish=None,
                    )
                ]
            },
            fc(
                partialArgs=[{"jsonPath": "$.location", "stringValue": "Boston, MA", "willContinue": True}],
                willContinue=True,
            ),
            fc(partialArgs=[{"jsonPath": "$.location", "stringValue": ""}], willContinue=True),
            fc(partialArgs=[{"jsonPath": "$.unit", "stringValue": "celsius"}], willContinue=True),
            fc(),
            fc(name="get_current_weather", willContinue=True),
            fc(partialArgs=[{"jsonPath": "$.location", "stringValue": "San Francisco, CA"}], willContinue=True),
            {
                "candidates": [candidate({"functionCall": {}}, finish="STOP")],
                "usageMetadata": {
                    "promptTokenCount": 27,
                    "candidatesTokenCount": 45,
                    "thoughtsTokenCount": 504,
                    "totalTokenCount": 576,
                },
            },
        ]
    )
    got = assemble(chunks)
    assert got["finish_reason"] == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in got["tool_calls"]] == [
        ("get_current_weather", {"location": "Boston, MA", "unit": "celsius"}),
        ("get_current_weather", {"location": "San Francisco, CA"}),
    ]
    assert got["tool_calls"][0]["extra"] == {"google": {"thought_signature": "U0lH"}}
    deltas = [c for chunk in chunks for ch in chunk["choices"] for c in ch["delta"].get("tool_calls", [])]
    assert [d["index"] for d in deltas if "id" in d] == [0, 1]
    assert all(set(d) <= {"index", "function"} and set(d["function"]) == {"arguments"} for d in deltas if "id" not in d)


def test_complete_call_has_everything_on_its_first_delta() -> None:
    chunks = run([{"candidates": [candidate({"functionCall": {"id": "x1", "name": "f", "args": {"a": 1}}})]}])
    call = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert call == {"index": 0, "id": "x1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}


def test_thought_tags_across_deltas() -> None:
    chunks = run(
        [
            {"candidates": [candidate({"text": "pl", "thought": True}, finish=None)]},
            {"candidates": [candidate({"text": "an", "thought": True}, finish=None)]},
            {"candidates": [candidate({"text": "Answer"})]},
        ],
        Rendering(model="m", stream=True, thought_tag_marker="think"),
    )
    assert assemble(chunks)["content"] == "<think>plan</think>Answer"


def test_unclosed_thought_is_closed_at_the_end() -> None:
    chunks = run(
        [{"candidates": [candidate({"text": "plan", "thought": True})]}],
        Rendering(model="m", stream=True, thought_tag_marker="t"),
    )
    assert assemble(chunks)["content"] == "<t>plan</t>"


def test_signature_on_an_empty_text_part_rides_on_a_delta() -> None:
    chunks = run(
        [
            {"candidates": [candidate({"text": "hi"}, finish=None)]},
            {"candidates": [candidate({"text": "", "thoughtSignature": "U0lH"})]},
        ]
    )
    carrying = [c["choices"][0]["delta"] for c in chunks if "extra_content" in c["choices"][0]["delta"]]
    assert carrying == [{"content": "", "extra_content": {"google": {"thought_signature": "U0lH"}}}]


def test_image_delta_in_audio() -> None:
    chunks = run([{"candidates": [candidate({"inlineData": {"mimeType": "image/png", "data": "iVBO"}})]}])
    audio = chunks[0]["choices"][0]["delta"]["audio"]
    assert audio["data"] == "iVBO" and audio["extra_content"] == {"google": {"mime_type": "image/png"}}


def test_include_usage_adds_a_final_chunk_with_no_choices() -> None:
    chunks = run(
        [
            {"candidates": [candidate({"text": "a"})], "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1}},
            {
                "candidates": [candidate({"text": ""})],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
            },
        ],
        Rendering(model="m", stream=True, include_usage=True),
    )
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
    }


def test_no_usage_without_include_usage() -> None:
    chunks = run(
        [{"candidates": [candidate({"text": "a"})], "usageMetadata": {"promptTokenCount": 1, "totalTokenCount": 1}}]
    )
    assert all("usage" not in c for c in chunks)


def test_legacy_functions_stream_function_call() -> None:
    chunks = run(
        [{"candidates": [candidate({"functionCall": {"name": "f", "args": {}}})]}],
        Rendering(model="m", stream=True, legacy_functions=True),
    )
    assert chunks[0]["choices"][0]["delta"]["function_call"] == {"name": "f", "arguments": "{}"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "function_call"


def test_unknown_finish_reason_is_stop_with_raw_value() -> None:
    chunks = run([{"candidates": [candidate({"text": "a"}, finish="FAKE_ENUM")]}])
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and last["delta"]["extra_content"] == {
        "google": {"finish_reason": "FAKE_ENUM"}
    }


def test_chunk_id_is_geminis_response_id() -> None:
    from chatgate.protocols import gemini as g
    from chatgate.translate.request import Rendering
    from chatgate.translate.stream import StreamTranslator

    translator = StreamTranslator(Rendering(model="google/gemini-2.5-flash", stream=True))
    first = g.GenerateContentResponse(
        response_id="nQiNafGyF5rw998PstqooAY",
        candidates=[g.Candidate(index=0, content=g.Content(role="model", parts=[g.Part(text="Hi")]))],
    )
    chunks = translator.feed(first) + translator.finish()
    assert {c.id for c in chunks} == {"nQiNafGyF5rw998PstqooAY"}
