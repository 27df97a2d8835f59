"""One test per translation pitfall of ``peers-and-pitfalls.md`` part B (B19, error
mapping, is in ``tests/gemini/test_engine.py``)."""

from __future__ import annotations

import json

import msgspec
import pydantic
import pytest
from openai.lib._pydantic import to_strict_json_schema

from chatgate.engines.gemini.signatures import fill_missing_signatures
from chatgate.errors import InvalidRequest, PayloadTooLarge
from chatgate.translate.request import Rendering, to_gemini
from chatgate.translate.response import fold, to_chat_completion
from chatgate.translate.stream import StreamTranslator
from tests.gemini import discovery
from tests.gemini.helpers import assemble
from tests.openapi import validate_chunk, validate_completion
from tests.translate.util import as_json, candidate, req, response, wire

USER = {"role": "user", "content": "q"}


def _stream(bodies: list[dict], rendering: Rendering = Rendering(model="m", stream=True)) -> list[dict]:
    t = StreamTranslator(rendering)
    out = [c for b in bodies for c in t.feed(response(b))] + t.finish()
    chunks = [as_json(c) for c in out]
    for c in chunks:
        validate_chunk(c)
    return chunks


def _complete(body: dict, rendering: Rendering = Rendering(model="m")) -> dict:
    out = as_json(to_chat_completion(fold([response(body)]), rendering))
    validate_completion(out)
    return out


def test_b1_tool_schemas_go_as_parameters_json_schema_with_refs_kept() -> None:
    params = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}, "n": {"type": ["integer", "null"], "exclusiveMinimum": 0}},
        "$defs": {"Item": {"type": "object", "properties": {"id": {"const": "x"}}, "additionalProperties": False}},
        "additionalProperties": False,
    }
    body = wire(tools=[{"type": "function", "function": {"name": "f", "parameters": params, "strict": True}}])
    decl = body["tools"][0]["functionDeclarations"][0]
    assert "parameters" not in decl
    assert decl["parametersJsonSchema"] == {k: v for k, v in params.items() if k != "$schema"}
    discovery.validate(body, discovery.request_schema("v1beta1"))


def test_b2_parameterless_tool_sends_no_schema() -> None:
    body = wire(
        tools=[
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
            {"type": "function", "function": {"name": "later"}},
        ]
    )
    assert body["tools"][0]["functionDeclarations"] == [{"name": "now"}, {"name": "later"}]


def test_b3_pydantic_schema_keeps_defs_and_additional_properties() -> None:
    class Step(pydantic.BaseModel):
        explanation: str

    class Answer(pydantic.BaseModel):
        steps: list[Step]
        final: str

    schema = to_strict_json_schema(Answer)
    body = wire(
        response_format={"type": "json_schema", "json_schema": {"name": "Answer", "schema": schema, "strict": True}}
    )
    sent = body["generationConfig"]["responseJsonSchema"]
    assert sent == schema and "$defs" in sent and sent["additionalProperties"] is False
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    discovery.validate(body, discovery.request_schema("v1"), "v1")


def test_b4_parallel_calls_get_distinct_stream_indexes() -> None:
    # Gemini sends each parallel call whole, each first in its own chunk.
    chunks = _stream(
        [
            {"candidates": [candidate({"functionCall": {"name": "get", "args": {"city": "A"}}}, finish=None)]},
            {"candidates": [candidate({"functionCall": {"name": "get", "args": {"city": "B"}}}, finish=None)]},
            {"candidates": [candidate({"functionCall": {"name": "get", "args": {"city": "C"}}}, finish="STOP")]},
        ]
    )
    got = assemble(chunks)
    assert [(c["name"], json.loads(c["arguments"])) for c in got["tool_calls"]] == [
        ("get", {"city": "A"}),
        ("get", {"city": "B"}),
        ("get", {"city": "C"}),
    ]
    indexes = [d["index"] for c in chunks for ch in c["choices"] for d in ch["delta"].get("tool_calls", [])]
    assert indexes == [0, 1, 2]


def test_b5_tool_call_ids_are_unique_and_gemini_ids_kept() -> None:
    out = _complete(
        {
            "candidates": [
                candidate(
                    {"functionCall": {"name": "f", "args": {}}},
                    {"functionCall": {"name": "f", "args": {}}},
                    {"functionCall": {"id": "gem-7", "name": "f", "args": {}}},
                )
            ]
        }
    )
    ids = [c["id"] for c in out["choices"][0]["message"]["tool_calls"]]
    assert len(set(ids)) == 3 and ids[2] == "gem-7" and all(i for i in ids)
    # Gemini's own id is echoed on the call and its response; ids chatgate made up are not.
    body = wire(
        [
            USER,
            {"role": "assistant", "tool_calls": out["choices"][0]["message"]["tool_calls"]},
            *[{"role": "tool", "tool_call_id": i, "content": "ok"} for i in ids],
        ]
    )
    calls = [p["functionCall"] for p in body["contents"][1]["parts"]]
    results = [p["functionResponse"] for p in body["contents"][2]["parts"]]
    assert [c.get("id") for c in calls] == [None, None, "gem-7"]
    assert [r.get("id") for r in results] == [None, None, "gem-7"]


def test_b6_tool_results_grouped_in_call_order_with_names() -> None:
    body = wire(
        [
            USER,
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "first", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "second", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "b", "content": "2"},
            {"role": "tool", "tool_call_id": "a", "content": "not json"},
        ]
    )
    assert len(body["contents"]) == 3
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == ["first", "second"]
    assert body["contents"][2]["parts"][0]["functionResponse"]["response"] == {"output": "not json"}
    # A schema-like output (a $ref with no media parts) is sent as text: Gemini 3 would
    # read the $ref as a media reference.
    ref = wire(
        [
            USER,
            {
                "role": "assistant",
                "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "a", "content": '{"$ref": "#/x"}'},
        ]
    )
    assert ref["contents"][2]["parts"][0]["functionResponse"]["response"] == {"output": '{"$ref": "#/x"}'}


def test_b7_developer_to_system_and_same_role_turns_merged() -> None:
    body = wire(
        [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "system", "content": "late"},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": "d"},
        ]
    )
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}, {"text": "late"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
    ]
    with pytest.raises(InvalidRequest):
        wire([{"role": "developer", "content": "only"}])


def test_b8_empty_text_dropped_and_text_before_calls() -> None:
    body = wire(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "image_url", "image_url": "gs://b/a.png"}],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "a", "content": "x"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "next"},
        ]
    )
    assert body["contents"][0]["parts"] == [{"fileData": {"mimeType": "image/png", "fileUri": "gs://b/a.png"}}]
    assert body["contents"][1]["parts"] == [{"functionCall": {"id": "a", "name": "f", "args": {}}}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user", "user"]
    mixed = wire(
        [
            USER,
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
        ]
    )
    assert list(mixed["contents"][1]["parts"][0]) == ["text"] and "functionCall" in mixed["contents"][1]["parts"][1]


def test_b9_thought_signature_round_trips_onto_the_same_part() -> None:
    gemini = {
        "candidates": [
            candidate(
                {"text": "thinking", "thought": True},
                {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "U0lHQQ=="},
                {"functionCall": {"name": "g", "args": {}}},
            )
        ]
    }
    message = _complete(gemini)["choices"][0]["message"]
    assert message["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "U0lHQQ=="}}
    history = [
        USER,
        {k: v for k, v in message.items() if k in ("role", "tool_calls")},
        {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "1"},
        {"role": "tool", "tool_call_id": message["tool_calls"][1]["id"], "content": "2"},
    ]
    body = wire(history)
    assert body["contents"][1]["parts"][0]["thoughtSignature"] == "U0lHQQ=="
    assert "thoughtSignature" not in body["contents"][1]["parts"][1]
    # History from elsewhere (no signature): the configurable dummy fallback.
    foreign, _ = to_gemini(
        req(
            [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "a", "content": "1"},
            ]
        ),
        "google/gemini-3-pro-preview",
    )
    assert fill_missing_signatures(foreign) == 1
    assert foreign.contents[1].parts[0].thought_signature == "skip_thought_signature_validator"


def test_b10_finish_reason_is_tool_calls_when_the_call_came_earlier() -> None:
    chunks = _stream(
        [
            {"candidates": [candidate({"functionCall": {"name": "f", "args": {}}}, finish=None)]},
            {"candidates": [candidate({"text": ""}, finish="STOP")]},
        ]
    )
    assert assemble(chunks)["finish_reason"] == "tool_calls"
    out = _complete({"candidates": [candidate({"functionCall": {"name": "f", "args": {}}}, finish="STOP")]})
    assert out["choices"][0]["finish_reason"] == "tool_calls"


def test_b11_stream_usage_is_the_last_reported_in_one_final_chunk() -> None:
    usage = lambda c, t: {
        "promptTokenCount": 5,
        "candidatesTokenCount": c,
        "thoughtsTokenCount": t,
        "cachedContentTokenCount": 2,
        "totalTokenCount": 5 + c + t,
    }
    chunks = _stream(
        [
            {"candidates": [candidate({"text": "a"}, finish=None)], "usageMetadata": usage(1, 10)},
            {"candidates": [candidate({"text": "b"})], "usageMetadata": usage(2, 10)},
        ],
        Rendering(model="m", stream=True, include_usage=True),
    )
    assert [c["usage"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 17,
        "completion_tokens_details": {"reasoning_tokens": 10},
        "prompt_tokens_details": {"cached_tokens": 2},
    }


def test_b12_http_image_urls_pass_as_file_data_with_mime_type() -> None:
    body = wire(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}}]}]
    )
    assert body["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}}
    ]
    with pytest.raises(InvalidRequest):
        wire([{"role": "user", "content": [{"type": "image_url", "image_url": "ftp://x/y.png"}]}])


def test_b13_oversized_inline_media_is_413_naming_the_part() -> None:
    half = "A" * (15 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as err:
        wire(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"format": "wav", "data": half}},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{half}"}},
                    ],
                }
            ]
        )
    assert err.value.status == 413 and err.value.param == "messages[0].content[1].image_url"


def test_b14_blocked_prompt_gives_one_content_filter_choice() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "no"},
        "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
    }
    out = _complete(blocked)
    assert len(out["choices"]) == 1
    choice = out["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] is None
    assert choice["message"]["extra_content"] == {"google": {"block_reason": "SAFETY", "block_reason_message": "no"}}
    assert out["usage"]["prompt_tokens"] == 4
    chunks = _stream([blocked])
    assert assemble(chunks)["finish_reason"] == "content_filter"
    assert chunks[-1]["choices"][0]["delta"]["content"] is None


def test_b15_candidates_keep_their_index_in_streams() -> None:
    chunks = _stream(
        [
            {
                "candidates": [
                    candidate({"text": "a"}, index=0, finish=None),
                    candidate({"text": "b"}, index=1, finish=None),
                ]
            },
            {"candidates": [candidate({"text": "c"}, index=1, finish="MAX_TOKENS"), candidate({"text": "d"}, index=0)]},
        ]
    )
    finishes = {ch["index"]: ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]}
    text = {
        i: "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"] if ch["index"] == i)
        for i in (0, 1)
    }
    assert finishes == {0: "stop", 1: "length"} and text == {0: "ad", 1: "bc"}
    assert wire(n=3)["generationConfig"]["candidateCount"] == 3


def test_b16_empty_stop_list_is_dropped_and_more_than_four_rejected() -> None:
    assert "generationConfig" not in wire(stop=[])
    assert wire(stop=["a", ""])["generationConfig"] == {"stopSequences": ["a"]}
    with pytest.raises(msgspec.ValidationError):
        req(stop=["1", "2", "3", "4", "5"])


def test_b17_max_tokens_zero_rejected_and_max_tokens_finish_is_length_with_empty_content() -> None:
    with pytest.raises(msgspec.ValidationError):
        req(max_tokens=0)
    out = _complete(
        {
            "candidates": [{"index": 0, "content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 3, "thoughtsTokenCount": 100, "totalTokenCount": 103},
        }
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] is None
    assert out["usage"]["completion_tokens"] == 0


def test_b18_out_of_range_sampling_rejected_and_gemini3_penalties_dropped() -> None:
    for field, value in (("temperature", 2.5), ("top_p", 1.5), ("presence_penalty", -3)):
        with pytest.raises(msgspec.ValidationError):
            req(**{field: value})
    assert "presencePenalty" not in wire(model="google/gemini-3-flash-preview", presence_penalty=1, temperature=1).get(
        "generationConfig", {}
    )


def test_b20_function_and_builtin_tools_in_separate_tool_objects() -> None:
    body = wire(
        tools=[{"type": "function", "function": {"name": "f"}}],
        web_search_options={},
        extra_body={"google": {"tools": [{"code_execution": {}, "url_context": {}}]}},
    )
    assert body["tools"] == [
        {"functionDeclarations": [{"name": "f"}]},
        {"googleSearch": {}},
        {"codeExecution": {}},
        {"urlContext": {}},
    ]
    assert all(len(tool) == 1 for tool in body["tools"])
