"""Gemini response → chat.completion."""

from __future__ import annotations

import pytest

from chatgate.translate.request import Rendering
from chatgate.translate.response import finish_reason, fold, to_chat_completion
from tests.openapi import validate_completion
from tests.translate.util import as_json, candidate, response

R = Rendering(model="google/gemini-2.5-flash")


def render(body: dict, rendering: Rendering = R) -> dict:
    out = as_json(to_chat_completion(fold([response(body)]), rendering))
    validate_completion(out)
    return out


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MODEL_ARMOR", "content_filter"),
        ("LANGUAGE", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        ("IMAGE_OTHER", "content_filter"),
        ("NO_IMAGE", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("UNEXPECTED_TOOL_CALL", "stop"),
        ("TOO_MANY_TOOL_CALLS", "stop"),
        ("MALFORMED_RESPONSE", "stop"),
        ("MISSING_THOUGHT_SIGNATURE", "stop"),
        ("OTHER", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("SOMETHING_NEW", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reason_table(gemini: str | None, openai: str) -> None:
    assert finish_reason(gemini) == openai


def test_raw_finish_reason_and_message_are_kept() -> None:
    out = render({"candidates": [candidate({"text": "x"}, finish="MALFORMED_FUNCTION_CALL", finishMessage="bad call")]})
    assert out["choices"][0]["message"]["extra_content"] == {
        "google": {"finish_reason": "MALFORMED_FUNCTION_CALL", "finish_message": "bad call"}
    }


def test_usage_reasoning_cached_and_traffic_type() -> None:
    out = render(
        {
            "candidates": [candidate({"text": "x"})],
            "usageMetadata": {
                "promptTokenCount": 27,
                "candidatesTokenCount": 45,
                "thoughtsTokenCount": 504,
                "totalTokenCount": 576,
                "cachedContentTokenCount": 20,
                "trafficType": "PROVISIONED_THROUGHPUT",
            },
        }
    )
    assert out["usage"] == {
        "prompt_tokens": 27,
        "completion_tokens": 45,
        "total_tokens": 576,
        "completion_tokens_details": {"reasoning_tokens": 504},
        "prompt_tokens_details": {"cached_tokens": 20},
        "extra_properties": {"google": {"traffic_type": "PROVISIONED_THROUGHPUT"}},
    }


def test_thoughts_untagged_without_marker_and_tagged_with_it() -> None:
    body = {"candidates": [candidate({"text": "plan", "thought": True}, {"text": "answer"})]}
    assert render(body)["choices"][0]["message"]["content"] == "plananswer"
    tagged = render(body, Rendering(model="m", thought_tag_marker="think"))
    assert tagged["choices"][0]["message"]["content"] == "<think>plan</think>answer"


def test_signature_on_text_goes_to_message_extra_content() -> None:
    out = render({"candidates": [candidate({"text": "hi"}, {"text": "", "thoughtSignature": "U0lH"})]})
    message = out["choices"][0]["message"]
    assert message["content"] == "hi"
    assert message["extra_content"] == {"google": {"thought_signature": "U0lH"}}


def test_generated_image_goes_to_audio_with_mime_type() -> None:
    out = render(
        {
            "candidates": [
                candidate({"inlineData": {"mimeType": "image/png", "data": "iVBO"}, "thoughtSignature": "U0lH"})
            ]
        }
    )
    message = out["choices"][0]["message"]
    assert message["content"] is None
    assert message["audio"]["data"] == "iVBO"
    assert message["audio"]["extra_content"] == {"google": {"mime_type": "image/png"}}
    assert message["extra_content"] == {"google": {"thought_signature": "U0lH"}}


def test_further_images_go_to_extra_content() -> None:
    out = render(
        {
            "candidates": [
                candidate(
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "BBBB"}},
                )
            ]
        }
    )
    assert out["choices"][0]["message"]["extra_content"]["google"]["images"] == [
        {"data": "BBBB", "mime_type": "image/jpeg"}
    ]


def test_legacy_functions_answer_with_function_call() -> None:
    out = render(
        {"candidates": [candidate({"functionCall": {"name": "f", "args": {"a": 1}}})]},
        Rendering(model="m", legacy_functions=True),
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {"name": "f", "arguments": '{"a":1}'}
    assert "tool_calls" not in choice["message"]


def test_citations_with_a_url_become_annotations() -> None:
    out = render(
        {
            "candidates": [
                candidate(
                    {"text": "x" * 20},
                    citationMetadata={
                        "citations": [
                            {"startIndex": 1, "endIndex": 5, "uri": "https://a.test", "title": "A"},
                            {"endIndex": 9, "title": "no url"},
                        ]
                    },
                )
            ]
        }
    )
    assert out["choices"][0]["message"]["annotations"] == [
        {
            "type": "url_citation",
            "url_citation": {"url": "https://a.test", "title": "A", "start_index": 1, "end_index": 5},
        }
    ]


def test_candidate_index_and_several_candidates() -> None:
    out = render({"candidates": [candidate({"text": "a"}, index=0), candidate({"text": "b"}, index=1)]})
    assert [(c["index"], c["message"]["content"]) for c in out["choices"]] == [(0, "a"), (1, "b")]


def test_fold_joins_text_and_assembles_streamed_arguments() -> None:
    chunks = [
        response({"candidates": [candidate({"text": "a"}, finish=None)]}),
        response(
            {
                "candidates": [
                    candidate(
                        {"text": "b"},
                        {"functionCall": {"name": "f", "willContinue": True}, "thoughtSignature": "U0lH"},
                        finish=None,
                    )
                ]
            }
        ),
        response(
            {
                "candidates": [
                    candidate(
                        {
                            "functionCall": {
                                "partialArgs": [{"jsonPath": "$.x", "stringValue": "1", "willContinue": True}],
                                "willContinue": True,
                            }
                        },
                        finish=None,
                    )
                ]
            }
        ),
        response(
            {"candidates": [candidate({"functionCall": {"partialArgs": [{"jsonPath": "$.x", "stringValue": "2"}]}})]}
        ),
    ]
    out = as_json(to_chat_completion(fold(chunks), R))
    message = out["choices"][0]["message"]
    assert message["content"] == "ab"
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"x":"12"}'}
    assert message["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "U0lH"}}


def test_completion_id_is_geminis_response_id() -> None:
    from chatgate.protocols import gemini as g
    from chatgate.translate.request import Rendering
    from chatgate.translate.response import to_chat_completion

    response = g.GenerateContentResponse(
        response_id="bA-NacCPKoae_9MPsNCn6Qc",
        candidates=[
            g.Candidate(index=0, content=g.Content(role="model", parts=[g.Part(text="Hi")]), finish_reason="STOP")
        ],
    )
    assert to_chat_completion(response, Rendering(model="google/x")).id == "bA-NacCPKoae_9MPsNCn6Qc"


def test_a_whole_answer_renders_its_parts_as_the_stream_does() -> None:
    """One renderer for both: the answer's content is the stream's content joined, thought
    tags included (two thought parts in a row are one tagged span)."""
    from chatgate.translate.stream import StreamTranslator

    parts = [
        {"text": "plan", "thought": True},
        {"text": " more", "thought": True, "thoughtSignature": "U0lH"},
        {"text": "answer "},
        {"executableCode": {"language": "PYTHON", "code": "1+1"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "2"}},
        {"text": "done", "thought": True},
    ]
    rendering = Rendering(model="m", thought_tag_marker="t")
    whole = render({"candidates": [candidate(*parts)]}, rendering)["choices"][0]["message"]
    translator = StreamTranslator(Rendering(model="m", stream=True, thought_tag_marker="t"))
    chunks = [as_json(c) for c in translator.feed(response({"candidates": [candidate(*parts)]})) + translator.finish()]
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert whole["content"] == streamed
    assert whole["content"] == "<t>plan more</t>answer \n```python\n1+1\n```\n\n```\n2\n```\n<t>done</t>"
