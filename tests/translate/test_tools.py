"""Function calling, both directions."""

from __future__ import annotations

import pytest

from chatgate.errors import InvalidRequest
from chatgate.protocols import gemini as g
from chatgate.translate import tools
from tests.translate.util import rendering, wire

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "d",
        "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _call(
    call_id: str, name: str = "get_weather", args: str = '{"city":"Paris"}', **extra: object
) -> dict[str, object]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}, **extra}


def test_tools_become_function_declarations_with_json_schema() -> None:
    body = wire(tools=[WEATHER])
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "d",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("validated", {"mode": "VALIDATED"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: object, config: dict[str, object]) -> None:
    assert wire(tools=[WEATHER], tool_choice=choice)["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_naming_an_undeclared_function_is_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        wire(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert err.value.param == "tool_choice"


def test_required_without_tools_is_400() -> None:
    with pytest.raises(InvalidRequest):
        wire(tool_choice="required")


def test_legacy_functions_and_function_call() -> None:
    body = wire(functions=[WEATHER["function"]], function_call={"name": "get_weather"})
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert rendering(functions=[WEATHER["function"]]).legacy_functions


def test_invalid_function_name_is_400() -> None:
    bad = {"type": "function", "function": {"name": "9 lives"}}
    with pytest.raises(InvalidRequest) as err:
        wire(tools=[bad])
    assert err.value.param == "tools[0].function.name"


def test_stream_function_call_arguments_only_when_streaming() -> None:
    google = {"google": {"stream_function_call_arguments": True}}
    assert wire(tools=[WEATHER], stream=True, extra_body=google)["toolConfig"] == {
        "functionCallingConfig": {"streamFunctionCallArguments": True}
    }
    assert "toolConfig" not in wire(tools=[WEATHER], stream=False, extra_body=google)


def test_assistant_tool_calls_become_function_calls_with_signatures() -> None:
    sig = {"extra_content": {"google": {"thought_signature": "U0lHQQ=="}}}
    body = wire(
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    _call("function-call-11111111-1111-4111-8111-111111111111", **sig),
                    _call("call_2", args='{"city":"London"}'),
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": '{"temp": 12}'},
            {"role": "tool", "tool_call_id": "function-call-11111111-1111-4111-8111-111111111111", "content": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Let me check."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "U0lHQQ=="},
            {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "London"}}},
        ],
    }
    # Both results in one user turn, in call order; names resolved from the calls.
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
            {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"temp": 12}}},
        ],
    }


def test_tool_result_for_an_unknown_call_is_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        wire(
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [_call("a")]},
                {"role": "tool", "tool_call_id": "b", "content": "x"},
            ]
        )
    assert err.value.param == "messages[2].tool_call_id"


def test_invalid_arguments_json_is_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        wire([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [_call("a", args="{oops")]}])
    assert err.value.param == "messages[1].tool_calls[0].function.arguments"


def test_empty_arguments_are_an_empty_object() -> None:
    body = wire(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": [_call("a", args="")]},
            {"role": "tool", "tool_call_id": "a", "content": "x"},
        ]
    )
    assert body["contents"][1]["parts"][0]["functionCall"]["args"] == {}


def test_multimodal_function_response_parts() -> None:
    body = wire(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": [_call("a")]},
            {
                "role": "tool",
                "tool_call_id": "a",
                "content": '{"image_ref":{"$ref":"dress.jpg"}}',
                "extra_content": {
                    "google": {
                        "parts": [
                            {
                                "file_data": {
                                    "mime_type": "image/jpg",
                                    "display_name": "dress.jpg",
                                    "file_uri": "gs://b/dress.jpg",
                                }
                            }
                        ]
                    }
                },
            },
        ]
    )
    assert body["contents"][2]["parts"][0]["functionResponse"] == {
        "id": "a",
        "name": "get_weather",
        "response": {"image_ref": {"$ref": "dress.jpg"}},
        "parts": [{"fileData": {"mimeType": "image/jpg", "displayName": "dress.jpg", "fileUri": "gs://b/dress.jpg"}}],
    }


def test_legacy_function_message_and_function_call() -> None:
    body = wire(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "42"},
        ]
    )
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]
    assert body["contents"][2]["parts"] == [{"functionResponse": {"name": "f", "response": {"output": "42"}}}]


def test_tool_call_out_keeps_gemini_id_or_makes_one() -> None:
    kept = tools.tool_call_out(g.FunctionCall(id="abc", name="f", args={"x": 1}), "sig")
    assert kept.id == "abc" and kept.function.arguments == '{"x":1}'
    assert kept.extra_content == {"google": {"thought_signature": "sig"}}
    made = tools.tool_call_out(g.FunctionCall(name="f"), None)
    assert made.id.startswith("function-call-") and tools.gemini_id(made.id) is None


def test_a_bad_function_name_gets_the_same_400_from_translation_and_the_local_engine() -> None:
    from chatgate.engines.local.tools import toolset

    with pytest.raises(InvalidRequest) as translated:
        wire(tools=[{"type": "function", "function": {"name": "get weather"}}])
    request = g.GenerateContentRequest(
        contents=[], tools=[g.Tool(function_declarations=[g.FunctionDeclaration(name="get weather")])]
    )
    with pytest.raises(InvalidRequest) as local:
        toolset(request)
    assert (translated.value.message, translated.value.param) == (local.value.message, local.value.param)
    assert "invalid function name 'get weather'" in local.value.message
