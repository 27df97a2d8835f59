"""OpenAI request → Gemini request: one small test per behaviour."""

from __future__ import annotations

import pytest

from chatgate.errors import InvalidRequest, PayloadTooLarge, Unsupported
from tests.translate.util import rendering, wire

USER = [{"role": "user", "content": "hi"}]


def test_text_request_maps_sampling_parameters() -> None:
    body = wire(
        temperature=0.5, top_p=0.9, max_tokens=10, seed=7, stop="END", n=2, presence_penalty=0.1, frequency_penalty=0.2
    )
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["generationConfig"] == {
        "temperature": 0.5,
        "topP": 0.9,
        "maxOutputTokens": 10,
        "seed": 7,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
    }


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert wire(max_tokens=5, max_completion_tokens=9)["generationConfig"]["maxOutputTokens"] == 9


def test_penalties_are_dropped_on_gemini_3() -> None:
    body = wire(model="google/gemini-3-pro-preview", presence_penalty=0.5, temperature=1.0)
    assert body["generationConfig"] == {"temperature": 1.0}


def test_system_and_developer_messages_become_system_instruction() -> None:
    body = wire(
        [
            {"role": "system", "content": "a"},
            {"role": "developer", "content": [{"type": "text", "text": "b"}]},
            {"role": "user", "content": "hi"},
        ]
    )
    assert body["systemInstruction"] == {"parts": [{"text": "a"}, {"text": "b"}]}


def test_image_url_as_bare_gcs_string() -> None:
    body = wire([{"role": "user", "content": [{"type": "image_url", "image_url": "gs://b/scones.jpg"}]}])
    assert body["contents"][0]["parts"] == [{"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://b/scones.jpg"}}]


def test_image_url_unknown_extension_defaults_to_image_star() -> None:
    body = wire([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/pic"}}]}])
    assert body["contents"][0]["parts"][0]["fileData"]["mimeType"] == "image/*"


def test_image_data_url_becomes_inline_data() -> None:
    body = wire(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]}]
    )
    assert body["contents"][0]["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}]


def test_input_audio_uri_and_base64() -> None:
    body = wire(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"format": "audio/mp3", "data": "gs://b/pixel.mp3"}},
                    {"type": "input_audio", "input_audio": {"format": "wav", "data": "UklGRg=="}},
                ],
            }
        ]
    )
    assert body["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "audio/mp3", "fileUri": "gs://b/pixel.mp3"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


def test_file_part_pdf_data_url_keeps_filename() -> None:
    body = wire(
        [
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
                ],
            }
        ]
    )
    assert body["contents"][0]["parts"] == [{"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}]


def test_file_part_file_id_uri() -> None:
    body = wire([{"role": "user", "content": [{"type": "file", "file": {"file_id": "gs://b/report.pdf"}}]}])
    assert body["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/report.pdf"}}
    ]


def test_file_part_unknown_file_id_is_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        wire([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}])
    assert err.value.param == "messages[0].content[0].file.file_id"


def test_detail_is_request_level_before_gemini_3() -> None:
    body = wire(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "gs://b/a.png", "detail": "low"}}]}]
    )
    assert body["generationConfig"]["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    assert "mediaResolution" not in body["contents"][0]["parts"][0]


def test_detail_is_part_level_on_gemini_3() -> None:
    body = wire(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "gs://b/a.png", "detail": "high"}}]}],
        model="google/gemini-3-pro-preview",
    )
    assert body["contents"][0]["parts"][0]["mediaResolution"] == {"level": "MEDIA_RESOLUTION_HIGH"}
    assert "generationConfig" not in body


def test_mixed_details_before_gemini_3_are_400() -> None:
    with pytest.raises(InvalidRequest):
        wire(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "gs://b/a.png", "detail": "low"}},
                        {"type": "image_url", "image_url": {"url": "gs://b/b.png", "detail": "high"}},
                    ],
                }
            ]
        )


def test_inline_media_over_the_limit_is_413() -> None:
    big = "A" * (28 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as err:
        wire(
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{big}"}}]}]
        )
    assert err.value.param == "messages[0].content[0].image_url"


def test_response_format_text_and_json_object() -> None:
    assert wire(response_format={"type": "text"})["generationConfig"] == {"responseMimeType": "text/plain"}
    assert wire(response_format={"type": "json_object"})["generationConfig"] == {"responseMimeType": "application/json"}


def test_response_format_json_schema_sends_response_json_schema_without_strict() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {"type": "string"}},
        "additionalProperties": False,
        "required": ["a"],
    }
    body = wire(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}})
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == {k: v for k, v in schema.items() if k != "$schema"}
    assert "responseSchema" not in config


def test_modalities_image_sets_response_modalities() -> None:
    assert wire(modalities=["text", "image"])["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    assert "generationConfig" not in wire(modalities=["text"])


def test_reasoning_effort_is_a_budget_on_gemini_2() -> None:
    assert wire(reasoning_effort="low")["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}
    assert wire(reasoning_effort="medium")["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8192}
    assert wire(reasoning_effort="high")["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}
    assert wire(reasoning_effort="none")["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_reasoning_effort_is_a_level_on_gemini_3() -> None:
    model = "google/gemini-3-pro-preview"
    assert wire(model=model, reasoning_effort="minimal")["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "LOW"
    }
    assert wire(model=model, reasoning_effort="medium")["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "HIGH"
    }
    with pytest.raises(Unsupported):
        wire(model=model, reasoning_effort="none")


def test_reasoning_effort_with_thinking_config_is_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        wire(reasoning_effort="low", extra_body={"google": {"thinking_config": {"include_thoughts": True}}})
    assert err.value.param == "reasoning_effort"


def test_thinking_config_in_either_casing() -> None:
    snake = wire(extra_body={"google": {"thinking_config": {"include_thoughts": True, "thinking_budget": 10000}}})
    camel = wire(google={"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 10000}})
    assert snake["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 10000}
    assert camel == snake


def test_thinking_level_is_uppercased_and_exclusive_with_budget() -> None:
    body = wire(extra_body={"google": {"thinking_config": {"thinking_level": "low"}}})
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "LOW"}
    with pytest.raises(InvalidRequest):
        wire(extra_body={"google": {"thinking_config": {"thinking_level": "low", "thinking_budget": 5}}})


def test_google_extensions_map_to_request_fields() -> None:
    body = wire(
        extra_body={
            "google": {
                "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}],
                "cached_content": "projects/p/locations/l/cachedContents/1",
                "labels": {"team_name": "x"},
                "media_resolution": "low",
                "tools": [{"code_execution": {}}, {"urlContext": {}}],
            }
        }
    )
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}]
    assert body["cachedContent"] == "projects/p/locations/l/cachedContents/1"
    assert body["labels"] == {"team_name": "x"}
    assert body["generationConfig"] == {"mediaResolution": "MEDIA_RESOLUTION_LOW"}
    assert body["tools"] == [{"codeExecution": {}}, {"urlContext": {}}]


def test_top_level_google_is_accepted_and_extra_body_wins() -> None:
    body = wire(google={"cached_content": "a", "labels": {"k": "v"}}, extra_body={"google": {"cached_content": "b"}})
    assert body["cachedContent"] == "b" and body["labels"] == {"k": "v"}


def test_bad_safety_setting_names_its_path() -> None:
    with pytest.raises(InvalidRequest) as err:
        wire(extra_body={"google": {"safety_settings": [{"category": 3, "threshold": "x"}]}})
    assert err.value.param == "extra_body.google.safety_settings[0].category"


def test_unknown_native_tool_is_400() -> None:
    with pytest.raises(InvalidRequest):
        wire(extra_body={"google": {"tools": [{"google_teleport": {}}]}})


def test_web_search_options_adds_google_search() -> None:
    assert wire(web_search_options={})["tools"] == [{"googleSearch": {}}]


def test_thought_tag_marker_goes_to_rendering() -> None:
    assert rendering(extra_body={"google": {"thought_tag_marker": "think"}}).thought_tag_marker == "think"


def test_tagged_assistant_text_becomes_thought_parts() -> None:
    body = wire(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "<think>hmm</think>Answer"},
            {"role": "user", "content": "more"},
        ],
        extra_body={"google": {"thought_tag_marker": "think"}},
    )
    assert body["contents"][1]["parts"] == [{"text": "hmm", "thought": True}, {"text": "Answer"}]


def test_extra_content_thought_takes_precedence_over_marker() -> None:
    body = wire(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "<think>x</think>", "extra_content": {"google": {"thought": False}}},
            {"role": "user", "content": "more"},
        ],
        extra_body={"google": {"thought_tag_marker": "think"}},
    )
    assert body["contents"][1]["parts"] == [{"text": "<think>x</think>"}]


def test_extra_content_thought_on_a_part() -> None:
    body = wire(
        [{"role": "user", "content": [{"type": "text", "text": "a", "extra_content": {"google": {"thought": True}}}]}]
    )
    assert body["contents"][0]["parts"] == [{"text": "a", "thought": True}]


def test_message_level_signature_goes_on_the_last_part() -> None:
    body = wire(
        [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                "extra_content": {"google": {"thought_signature": "c2ln"}},
            },
            {"role": "user", "content": "more"},
        ]
    )
    assert body["contents"][1]["parts"] == [{"text": "a"}, {"text": "b", "thoughtSignature": "c2ln"}]


def test_vertex_key_and_base64_dummy_signature_are_accepted() -> None:
    body = wire(
        [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "a",
                "extra_content": {"vertex": {"thought_signature": "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="}},
            },
            {"role": "user", "content": "more"},
        ]
    )
    assert body["contents"][1]["parts"] == [{"text": "a", "thoughtSignature": "skip_thought_signature_validator"}]


def test_only_system_messages_is_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        wire([{"role": "system", "content": "s"}])
    assert err.value.param == "messages"


def test_include_usage_only_when_streaming() -> None:
    assert rendering(stream=True, stream_options={"include_usage": True}).include_usage
    assert not rendering(stream=False, stream_options={"include_usage": True}).include_usage


def test_parallel_tool_calls_travels_beside_the_request() -> None:
    """Gemini's request has no field for it: it is an engine option, true unless refused."""
    assert rendering().parallel_tool_calls is True
    assert rendering(parallel_tool_calls=True).parallel_tool_calls is True
    assert rendering(parallel_tool_calls=False).parallel_tool_calls is False
    assert wire(parallel_tool_calls=False) == wire()
