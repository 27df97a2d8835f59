from __future__ import annotations

import pytest

from chatgate.engines.capabilities import check, needs
from chatgate.errors import Unsupported
from chatgate.translate.request import to_gemini
from tests.translate.util import req


def _request(**fields: object):  # type: ignore[no-untyped-def]
    return to_gemini(req(**fields), "google/gemini-2.5-flash")[0]


def test_a_text_request_needs_nothing() -> None:
    assert needs(_request()) == []


def test_needs_are_named_for_users() -> None:
    request = _request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": "gs://b/a.png"},
                    {"type": "file", "file": {"file_id": "gs://b/a.pdf"}},
                ],
            }
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],
        modalities=["text", "image"],
        extra_body={"google": {"tools": [{"google_search": {}}]}},
    )
    assert needs(request) == [
        "image input",
        "document input",
        "function calling",
        "Google tool `googleSearch`",
        "image output",
    ]


def test_check_names_the_first_missing_capability() -> None:
    request = _request(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": "gs://b/a.png"}]}])
    check(request, {"image input"}, "m")
    with pytest.raises(Unsupported) as err:
        check(request, {"function calling"}, "smollm")
    assert "image input" in err.value.message and err.value.status == 400


@pytest.mark.parametrize(
    ("fields", "need", "param", "code"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "gs://b/a.wav", "format": "wav"}}],
                    }
                ]
            },
            "audio input",
            "messages",
            "unsupported_content",
        ),
        ({"web_search_options": {}}, "Google tool `googleSearch`", "tools", "unsupported_parameter"),
        ({"modalities": ["text", "audio"]}, "audio output", "modalities", "unsupported_parameter"),
        (
            {"extra_body": {"google": {"cached_content": "cachedContents/1"}}},
            "cached content",
            "extra_body.google.cached_content",
            "unsupported_parameter",
        ),
    ],
)
def test_check_names_the_field_that_asked(fields: dict, need: str, param: str, code: str) -> None:
    with pytest.raises(Unsupported) as err:
        check(_request(**fields), {"function calling"}, "smollm")
    assert need in err.value.message and "Gemini" in err.value.message
    assert (err.value.param, err.value.code) == (param, code)


def test_the_local_engine_asks_capabilities_first() -> None:
    """Everything beyond text but function calls is refused before any prompt is built,
    media in a system instruction and function-response media included."""
    from chatgate.engines.local import prompt
    from chatgate.protocols import gemini as g

    text = [g.Content(role="user", parts=[g.Part(text="hi")])]
    image = g.Part(file_data=g.FileData(mime_type="image/png", file_uri="gs://b/a.png"))
    result = g.Part(
        function_response=g.FunctionResponse(
            name="f",
            response={},
            parts=[g.FunctionResponsePart(file_data=g.FileData(mime_type="image/png", file_uri="gs://b/a.png"))],
        )
    )
    for request, need in [
        (g.GenerateContentRequest(contents=text, system_instruction=g.Content(parts=[image])), "image input"),
        (
            g.GenerateContentRequest(contents=[*text, g.Content(role="user", parts=[result])]),
            "multimodal function responses",
        ),
    ]:
        with pytest.raises(Unsupported) as err:
            prompt.output(request, "smollm")
        assert need in err.value.message
    tools = [g.Tool(function_declarations=[g.FunctionDeclaration(name="f")])]
    assert prompt.output(g.GenerateContentRequest(contents=text, tools=tools), "smollm").tools is not None
