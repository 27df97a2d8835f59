"""``extra_content.google`` on messages, content parts and tool calls: where each key is read,
and the JSON path a bad value is reported at."""

from __future__ import annotations

from typing import Any

import pytest

from chatgate.errors import InvalidRequest
from tests.translate.util import wire

Q = {"role": "user", "content": "q"}
MORE = {"role": "user", "content": "more"}


def _google(**keys: Any) -> dict[str, Any]:
    return {"extra_content": {"google": keys}}


def _call(**extra: Any) -> dict[str, Any]:
    return {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}, **extra}


def _tool(**extra: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": "a", "content": "1", **extra}


BAD: list[Any] = [
    pytest.param(
        [{"role": "user", "content": "q", **_google(thought="yes")}],
        "messages[0].extra_content.google.thought",
        "thought must be a boolean",
        id="user-thought",
    ),
    pytest.param(
        [{"role": "user", "content": "q", **_google(thought_signature=5)}],
        "messages[0].extra_content.google.thought_signature",
        "non-empty base64",
        id="user-signature",
    ),
    pytest.param(
        [{"role": "user", "content": [{"type": "text", "text": "a", **_google(thought=1)}]}],
        "messages[0].content[0].extra_content.google.thought",
        "boolean",
        id="user-part-thought",
    ),
    pytest.param(
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": "gs://b/a.png", **_google(thoughtSignature="")}],
            }
        ],
        "messages[0].content[0].extra_content.google.thought_signature",
        "non-empty",
        id="camel-key",
    ),
    pytest.param(
        [Q, {"role": "assistant", "content": "a", **_google(thought="no")}, MORE],
        "messages[1].extra_content.google.thought",
        "boolean",
        id="assistant-thought",
    ),
    pytest.param(
        [Q, {"role": "assistant", "content": "a", **_google(thought_signature=[])}, MORE],
        "messages[1].extra_content.google.thought_signature",
        "non-empty",
        id="assistant-signature",
    ),
    pytest.param(
        [
            Q,
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "a", **_google(thought="t")}],
            },
            MORE,
        ],
        "messages[1].content[1].extra_content.google.thought",
        "boolean",
        id="assistant-part-thought",
    ),
    pytest.param(
        [Q, {"role": "assistant", "content": [{"type": "text", "text": "a", **_google(thought_signature="")}]}, MORE],
        "messages[1].content[0].extra_content.google.thought_signature",
        "non-empty",
        id="assistant-part-signature",
    ),
    pytest.param(
        [
            Q,
            {"role": "assistant", "tool_calls": [_call(), _call(id="b", **_google(thought_signature=1))]},
            _tool(),
            _tool(tool_call_id="b"),
        ],
        "messages[1].tool_calls[1].extra_content.google.thought_signature",
        "non-empty",
        id="tool-call-signature",
    ),
    pytest.param(
        [Q, {"role": "assistant", "tool_calls": [_call()]}, _tool(**_google(parts={"a": 1}))],
        "messages[2].extra_content.google.parts",
        "must be a list",
        id="tool-parts-not-a-list",
    ),
    pytest.param(
        [Q, {"role": "assistant", "tool_calls": [_call()]}, _tool(**_google(parts=[{}]))],
        "messages[2].extra_content.google.parts[0]",
        "inline_data or file_data",
        id="tool-part-empty",
    ),
    pytest.param(
        [
            Q,
            {"role": "assistant", "tool_calls": [_call()]},
            _tool(**_google(parts=[{"inline_data": {"mime_type": "image/png"}}])),
        ],
        "messages[2].extra_content.google.parts[0].inlineData",
        "data",
        id="tool-part-field",
    ),
    pytest.param(
        [
            Q,
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "1", **_google(parts=5)},
        ],
        "messages[2].extra_content.google.parts",
        "must be a list",
        id="function-message-parts",
    ),
]


@pytest.mark.parametrize(("messages", "param", "words"), BAD)
def test_a_bad_extension_names_its_path(messages: list[dict[str, Any]], param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        wire(messages)
    assert err.value.param == param and err.value.status == 400
    assert words in err.value.message


def test_keys_are_read_only_where_they_mean_something() -> None:
    """A key on a holder it does not apply to is ignored, whatever its value."""
    body = wire(
        [
            {"role": "system", "content": "s", **_google(thought="x", thought_signature=1)},
            {"role": "user", "content": "q", **_google(parts="x")},
            {"role": "assistant", "tool_calls": [_call(**_google(thought="x", parts=1))]},
            _tool(**_google(thought="x", thought_signature=1)),
            MORE,
        ]
    )
    assert body["systemInstruction"] == {"parts": [{"text": "s"}]}
    assert body["contents"][1]["parts"] == [{"functionCall": {"id": "a", "name": "f", "args": {}}}]
    assert body["contents"][2]["parts"][0]["functionResponse"] == {"id": "a", "name": "f", "response": {"output": "1"}}


def test_google_wins_over_vertex_and_either_casing_is_read() -> None:
    body = wire(
        [
            Q,
            {
                "role": "assistant",
                "content": "a",
                "extra_content": {
                    "vertex": {"thoughtSignature": "dmVydGV4", "thought": True},
                    "google": {"thought_signature": "Z29vZ2xl"},
                },
            },
            MORE,
        ]
    )
    assert body["contents"][1]["parts"] == [{"text": "a", "thought": True, "thoughtSignature": "Z29vZ2xl"}]


def test_user_message_thought_marks_its_text_parts() -> None:
    body = wire(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": "gs://b/a.png"}],
                **_google(thought=True, thought_signature="c2ln"),
            }
        ]
    )
    assert body["contents"][0]["parts"] == [
        {"text": "a", "thought": True},
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/a.png"}, "thoughtSignature": "c2ln"},
    ]


def test_part_signature_wins_over_the_message_signature() -> None:
    body = wire(
        [
            Q,
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a", **_google(thought_signature="cGFydA==")}],
                **_google(thought_signature="bWVzc2FnZQ=="),
            },
            MORE,
        ]
    )
    assert body["contents"][1]["parts"] == [{"text": "a", "thoughtSignature": "cGFydA=="}]


def test_inline_function_response_media_counts_toward_the_limit() -> None:
    from chatgate.errors import PayloadTooLarge

    big = "A" * (21 * 1024 * 1024 * 4 // 3)
    with pytest.raises(PayloadTooLarge) as err:
        wire(
            [
                Q,
                {"role": "assistant", "tool_calls": [_call()]},
                _tool(**_google(parts=[{"inlineData": {"mimeType": "image/png", "data": big}}])),
            ]
        )
    assert err.value.param == "messages[2].extra_content.google.parts[0]"
