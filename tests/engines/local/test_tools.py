"""Function calling on the embedded model, canonical requests in, canonical parts out."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import jsonschema
import pytest

from chatgate.protocols import gemini as g
from chatgate.protocols.tuning import Tuning
from tests.engines.local.conftest import Runner, calls_of, text_of, user

pytestmark = pytest.mark.model

CALL_ID = re.compile(r"^function-call-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 30},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TIME = {
    "type": "object",
    "properties": {"timezone": {"type": "string", "pattern": "^[A-Z][a-z]+/[A-Z][a-z]+$"}},
    "required": ["timezone"],
    "additionalProperties": False,
}
SCHEMAS = {
    "get_weather": WEATHER,
    "get_time": TIME,
    "ping": {"type": "object", "properties": {}, "additionalProperties": False},
}
TOOLS = [
    g.Tool(
        function_declarations=[
            g.FunctionDeclaration(
                name="get_weather", description="Get the weather forecast for a city.", parameters_json_schema=WEATHER
            ),
            g.FunctionDeclaration(
                name="get_time", description="Get the local time in a timezone.", parameters_json_schema=TIME
            ),
            g.FunctionDeclaration(name="ping", description="Check that the service is up."),  # no parameters at all
        ]
    )
]


def request(
    prompt: str,
    mode: str | None = None,
    names: list[str] | None = None,
    *,
    seed: int = 1,
    max_tokens: int = 120,
    contents: list[g.Content] | None = None,
) -> g.GenerateContentRequest:
    config = None
    if mode is not None:
        config = g.ToolConfig(function_calling_config=g.FunctionCallingConfig(mode=mode, allowed_function_names=names))
    return g.GenerateContentRequest(
        contents=contents or [user(prompt)],
        tools=TOOLS,
        tool_config=config,
        generation_config=g.GenerationConfig(max_output_tokens=max_tokens, seed=seed),
    )


def check_calls(found: list[g.FunctionCall], allowed: set[str]) -> None:
    assert found
    for call in found:
        assert call.name in allowed
        assert call.id is not None and CALL_ID.match(call.id)
        jsonschema.validate(call.args, SCHEMAS[call.name])
    assert len({c.id for c in found}) == len(found)


@pytest.mark.parametrize("seed", (1, 2, 3))
def test_any_always_calls_with_valid_arguments(local: Runner, seed: int) -> None:
    candidate = local.candidate(request("What will the weather be in Lisbon tomorrow?", "ANY", seed=seed))
    assert candidate.finish_reason == "STOP"
    check_calls(calls_of(candidate), set(SCHEMAS))
    assert text_of(candidate).strip() == ""


@pytest.mark.parametrize("name", ["get_time", "ping"])
def test_named_function_is_the_one_called(local: Runner, name: str) -> None:
    candidate = local.candidate(
        request("What will the weather be in Lisbon tomorrow?", "ANY", [name]), parallel_tool_calls=False
    )
    found = calls_of(candidate)
    assert [c.name for c in found] == [name]
    check_calls(found, {name})
    if name == "ping":
        assert found[0].args == {}


@pytest.mark.parametrize("seed", (1, 2))
def test_no_parallel_calls_means_exactly_one(local: Runner, seed: int) -> None:
    candidate = local.candidate(
        request("Weather in Oslo and in Rome, please.", "ANY", seed=seed), parallel_tool_calls=False
    )
    assert candidate.finish_reason == "STOP"
    assert len(calls_of(candidate)) == 1


def test_parallel_calls_have_unique_ids(local: Runner) -> None:
    prompt = "Call get_weather for Oslo, then get_weather for Rome, then get_weather for Paris."
    candidate = local.candidate(request(prompt, "ANY", ["get_weather", "get_time"], seed=4, max_tokens=160))
    found = calls_of(candidate)
    assert len(found) >= 2  # this seed makes several calls; each one is valid and has its own id
    check_calls(found, {"get_weather", "get_time"})


def test_a_named_function_is_called_once(local: Runner) -> None:
    prompt = "Call get_weather for Oslo, then get_weather for Rome, then get_weather for Paris."
    candidate = local.candidate(request(prompt, "ANY", ["get_weather"], seed=4, max_tokens=160))
    assert candidate.finish_reason == "STOP"
    assert len(calls_of(candidate)) == 1


@pytest.mark.parametrize("seed", (1, 2))
def test_none_never_calls(local: Runner, seed: int) -> None:
    candidate = local.candidate(
        request("What's the weather in Lisbon? Use get_weather.", "NONE", seed=seed, max_tokens=30)
    )
    assert calls_of(candidate) == []
    assert text_of(candidate)


@pytest.mark.parametrize("seed", (1, 2))
def test_auto_answers_in_text_or_with_valid_calls(local: Runner, seed: int) -> None:
    candidate = local.candidate(request("What's the weather in Lisbon?", seed=seed, max_tokens=60))
    found = calls_of(candidate)
    if found:
        check_calls(found, set(SCHEMAS))
    else:
        assert text_of(candidate)


def test_auto_completes_a_call_the_model_starts(local: Runner) -> None:
    """Asked to copy a call, the model writes ``<tool_call>`` in free text; the engine
    switches to the grammar and the call comes out as a functionCall part, not text. (The
    decision before the answer is turned towards text, so the switch mid-text is what runs.)"""
    prompt = (
        'Repeat exactly this text: <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    )
    r = request(prompt, max_tokens=60)
    r.generation_config.temperature = 0
    candidate = local.candidate(r, parallel_tool_calls=False, tuning=Tuning(tool_call_bias=-100))
    assert "<tool_call>" not in text_of(candidate)
    found = calls_of(candidate)
    assert [c.name for c in found] == ["get_weather"]
    check_calls(found, {"get_weather"})  # the grammar added the required "unit"


def test_tool_loop_history_is_rendered_and_answered(local: Runner) -> None:
    contents = [
        user("What's the weather in Paris?"),
        g.Content(
            role="model",
            parts=[
                g.Part(text="Let me check."),
                g.Part(
                    function_call=g.FunctionCall(
                        id="function-call-1", name="get_weather", args={"city": "Paris", "unit": "celsius"}
                    )
                ),
            ],
        ),
        g.Content(
            role="user",
            parts=[
                g.Part(
                    function_response=g.FunctionResponse(
                        id="function-call-1", name="get_weather", response={"forecast": "sunny", "celsius": 21}
                    )
                )
            ],
        ),
    ]
    candidate = local.candidate(request("", contents=contents, max_tokens=30, seed=2))
    assert candidate.finish_reason in ("STOP", "MAX_TOKENS")
    assert text_of(candidate) or calls_of(candidate)
    model = local.engine.model(local.model)
    rendered = model._format(messages=_messages(local, contents)).prompt  # what the model read
    assert (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>'
        in rendered
    )
    assert '"response": {"forecast": "sunny", "celsius": 21}' in rendered
    assert "get_time" in rendered  # the tool list is in the system prompt


def _messages(local: Runner, contents: list[g.Content]) -> list[dict[str, Any]]:
    from chatgate.engines.local import prompt

    r = request("", contents=contents)
    return prompt.messages(r, local.model, prompt.output(r, local.model), template_tools=False)


def _reassemble(parts: list[g.PartialArg]) -> dict[str, Any]:
    """PartialArgs → a value, the way a client of Vertex's streamed arguments does."""
    out: dict[str, Any] = {}
    for arg in parts:
        keys = re.findall(r"\.([A-Za-z_][\w\-]*)|\[(\d+)\]", arg.json_path)
        node: Any = out
        path = [k or int(i) for k, i in keys]
        for key, following in itertools.pairwise(path):
            if isinstance(node, list):
                while len(node) <= key:
                    node.append([] if isinstance(following, int) else {})
                node = node[key]
            else:
                node = node.setdefault(key, [] if isinstance(following, int) else {})
        leaf = path[-1]
        if arg.string_value is not None:
            value: Any = (node[leaf] if isinstance(node, dict) and leaf in node else "") + arg.string_value
        elif arg.number_value is not None:
            value = int(arg.number_value) if arg.number_value.is_integer() else arg.number_value
        elif arg.bool_value is not None:
            value = arg.bool_value
        else:
            value = None
        if isinstance(node, list):
            while len(node) <= leaf:
                node.append(None)
        node[leaf] = value
    return out


def test_streamed_calls_come_as_partial_args(local: Runner) -> None:
    r = request("What will the weather be in Lisbon tomorrow?", "ANY", ["get_weather"], seed=5)
    chunks = local.chunks(r, stream=True, parallel_tool_calls=False)
    parts = [
        p.function_call
        for c in chunks
        for cand in c.candidates or []
        if cand.content
        for p in cand.content.parts
        if p.function_call
    ]
    assert len(parts) > 2  # the arguments came in several pieces
    first, *rest = parts
    assert first.name == "get_weather" and first.id and CALL_ID.match(first.id) and first.will_continue
    assert all(p.id == first.id and p.name is None for p in rest)
    assert [p.will_continue for p in parts].count(False) == 1 and parts[-1].will_continue is False
    args = parts[-1].args
    jsonschema.validate(args, WEATHER)
    assert _reassemble([a for p in parts for a in p.partial_args or []]) == args
    reasons = [cand.finish_reason for c in chunks for cand in c.candidates or [] if cand.finish_reason]
    assert reasons == ["STOP"]
    # The same seed without streaming gives the same call.
    assert calls_of(local.candidate(r, parallel_tool_calls=False))[0].args == args


def test_structured_answer_or_call_under_auto(local: Runner) -> None:
    """AUTO with a response schema: the answer is either JSON valid against it or calls."""
    schema = {
        "type": "object",
        "properties": {"reply": {"type": "string", "maxLength": 40}},
        "required": ["reply"],
        "additionalProperties": False,
    }
    r = request("Say hello.", seed=1, max_tokens=60)
    r.generation_config.response_mime_type = "application/json"
    r.generation_config.response_json_schema = schema
    candidate = local.candidate(r)
    found = calls_of(candidate)
    if found:
        check_calls(found, set(SCHEMAS))
    else:
        jsonschema.validate(json.loads(text_of(candidate)), schema)


def test_closing_a_constrained_stream_stops_generation(local: Runner) -> None:
    """Cancellation works under a grammar as in free text: within a token or two."""
    r = request("Weather in Oslo, Rome, Paris, Lima and Kyiv, one call each.", "ANY", ["get_weather"], max_tokens=300)

    async def first_chunks() -> None:
        stream = local.engine.generate(local.model, r, stream=True)
        seen = 0
        async for _ in stream:
            seen += 1
            if seen == 3:
                break
        await stream.aclose()

    model = local.engine.model(local.model)
    local.loop.run_until_complete(_idle(local))
    cancelled, tokens = model.counts.ended.get("CANCELLED", 0), model.counts.tokens
    local.loop.run_until_complete(first_chunks())
    local.loop.run_until_complete(_idle(local))
    assert model.counts.ended.get("CANCELLED", 0) == cancelled + 1  # this generation ended cancelled
    assert model.counts.tokens - tokens < 40  # ... within a few tokens of the close


async def _idle(local: Runner) -> None:
    import asyncio

    while local.engine.busy:
        await asyncio.sleep(0.01)
