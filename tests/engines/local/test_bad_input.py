"""Requests the local engine must refuse with a 400 naming the field, before any work."""

from __future__ import annotations

from typing import Any

import pytest

from chatgate.engines.local import prompt
from chatgate.errors import InvalidRequest, Unsupported
from chatgate.protocols import gemini as g

MODEL = "local-test"
HELLO = [g.Content(role="user", parts=[g.Part(text="hi")])]


def schema_request(schema: Any) -> g.GenerateContentRequest:
    return g.GenerateContentRequest(
        contents=HELLO,
        generation_config=g.GenerationConfig(response_mime_type="application/json", response_json_schema=schema),
    )


def tool_request(
    *declarations: g.FunctionDeclaration, mode: str | None = None, names: list[str] | None = None
) -> g.GenerateContentRequest:
    config = g.ToolConfig(function_calling_config=g.FunctionCallingConfig(mode=mode, allowed_function_names=names))
    return g.GenerateContentRequest(
        contents=HELLO,
        tools=[g.Tool(function_declarations=list(declarations))] if declarations else None,
        tool_config=config if mode or names else None,
    )


def fn(name: str = "f", schema: Any = None) -> g.FunctionDeclaration:
    return g.FunctionDeclaration(name=name, parameters_json_schema=schema)


CASES = [
    pytest.param(
        schema_request({"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        Unsupported,
        "response_format.json_schema.schema",
        "`uniqueItems`",
        id="unenforceable-keyword",
    ),
    pytest.param(
        schema_request({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}),
        Unsupported,
        "response_format.json_schema.schema",
        "`not`",
        id="unenforceable-nested",
    ),
    pytest.param(
        schema_request({"type": "strng"}),
        InvalidRequest,
        "response_format.json_schema.schema",
        "strng",
        id="unknown-type",
    ),
    pytest.param(
        schema_request({"type": "object", "required": "name"}),
        InvalidRequest,
        "response_format.json_schema.schema",
        "required",
        id="malformed-required",
    ),
    pytest.param(
        schema_request({"$ref": "#/$defs/missing"}),
        InvalidRequest,
        "response_format.json_schema.schema",
        "missing",
        id="dangling-ref",
    ),
    pytest.param(
        schema_request({"type": "string", "pattern": "(unclosed"}),
        InvalidRequest,
        "response_format.json_schema.schema",
        "regex",
        id="bad-pattern",
    ),
    pytest.param(
        schema_request({"type": "integer", "minimum": 5, "maximum": 1}),
        InvalidRequest,
        "response_format.json_schema.schema",
        "minimum",
        id="unsatisfiable",
    ),
    pytest.param(
        schema_request(["not", "a", "schema"]),
        InvalidRequest,
        "response_format.json_schema.schema",
        "JSON Schema",
        id="schema-not-an-object",
    ),
    pytest.param(
        g.GenerateContentRequest(
            contents=HELLO, generation_config=g.GenerationConfig(response_mime_type="text/x.enum")
        ),
        Unsupported,
        "response_format",
        "text/x.enum",
        id="other-mime-type",
    ),
    pytest.param(
        tool_request(fn("get weather")),
        InvalidRequest,
        "tools[0].function.name",
        "invalid function name",
        id="bad-tool-name",
    ),
    pytest.param(
        tool_request(fn("f"), fn("f")), InvalidRequest, "tools[1].function.name", "twice", id="duplicate-tool"
    ),
    pytest.param(
        tool_request(fn("f", {"type": "object", "properties": {"x": {"type": "array", "contains": {}}}})),
        Unsupported,
        "tools[0].function.parameters",
        "`contains`",
        id="unenforceable-parameters",
    ),
    pytest.param(
        tool_request(fn("f", {"type": "string"})),
        InvalidRequest,
        "tools[0].function.parameters",
        "object",
        id="parameters-not-an-object",
    ),
    pytest.param(
        tool_request(fn("f"), mode="ANY", names=["g"]),
        InvalidRequest,
        "tool_choice",
        "`g`",
        id="tool-choice-unknown-function",
    ),
    pytest.param(
        tool_request(mode="ANY"), InvalidRequest, "tool_choice", "no functions", id="tool-choice-without-tools"
    ),
    pytest.param(
        g.GenerateContentRequest(contents=HELLO, tools=[g.Tool(google_search={})]),
        Unsupported,
        "tools",
        "Gemini",
        id="native-google-tool",
    ),
]


@pytest.mark.parametrize(("request_", "error", "param", "words"), CASES)
def test_refused_with_param(request_: g.GenerateContentRequest, error: type[Exception], param: str, words: str) -> None:
    with pytest.raises(error) as caught:
        prompt.output(request_, MODEL)
    assert type(caught.value) is error
    assert caught.value.param == param  # type: ignore[attr-defined]
    assert words in str(caught.value)


@pytest.mark.model
def test_engine_refuses_before_yielding(local: Any) -> None:
    """Through the engine: the error comes from generate() before any chunk (a 400, not a
    broken stream), and the model stays usable."""
    with pytest.raises(Unsupported):
        local.chunks(schema_request({"type": "array", "uniqueItems": True}), stream=True)
    # Schemas compile after admission, on the context's thread: the context comes back once
    # that thread has handed it to the event loop.
    assert local.idle()


def test_auto_and_none_without_tools_are_accepted() -> None:
    for mode in ("AUTO", "NONE"):
        out = prompt.output(tool_request(mode=mode), MODEL)
        assert out.free_text and out.tools is None
