"""Tool choice AUTO on the embedded model (engines/local/decide.py): a call when a tool
plainly fits, text when none does and once the tool's result has come back; the same seed
gives the same answer; the decision follows the request's ``tool_call_bias``.

The cases are chosen with a wide margin from the decision's threshold (see
bench/tool_choice.py), so a different CPU's rounding cannot flip them."""

from __future__ import annotations

import dataclasses
from typing import Any

import jsonschema
import pytest

from chatgate.engines.local import decide
from chatgate.protocols import gemini as g
from chatgate.protocols.tuning import Tuning
from tests.engines.local.conftest import Runner, calls_of, text_of, user

pytestmark = pytest.mark.model

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {
            "type": "string",
            "description": "The city and state, e.g. San Francisco, CA or a zip code e.g. 95616",
        },
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
WEATHER = g.Tool(
    function_declarations=[
        g.FunctionDeclaration(
            name="get_current_weather",
            description="Get the current weather in a given location",
            parameters_json_schema=PARAMETERS,
        )
    ]
)
QUESTION = "What is the weather in Boston, MA?"


def ask(
    contents: list[g.Content], *, seed: int | None = None, max_tokens: int | None = None
) -> g.GenerateContentRequest:
    """Google's sample: no tool_config, temperature or max_tokens unless asked for."""
    config = g.GenerationConfig(seed=seed, max_output_tokens=max_tokens)
    return g.GenerateContentRequest(contents=contents, tools=[WEATHER], generation_config=config)


def answered(args: dict[str, Any]) -> list[g.Content]:
    call = g.FunctionCall(name="get_current_weather", args=args)
    result = g.FunctionResponse(name="get_current_weather", response={"temperature": 22, "description": "Sunny"})
    return [
        user(QUESTION),
        g.Content(role="model", parts=[g.Part(function_call=call)]),
        g.Content(role="user", parts=[g.Part(function_response=result)]),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3, None])
def test_the_weather_question_calls_the_tool(local: Runner, seed: int | None) -> None:
    candidate = local.candidate(ask([user(QUESTION)], seed=seed))
    found = calls_of(candidate)
    assert found, text_of(candidate)
    assert found[0].name == "get_current_weather"
    jsonschema.validate(found[0].args, PARAMETERS)
    assert not text_of(candidate).strip()
    assert candidate.finish_reason == "STOP"


@pytest.mark.parametrize("seed", [1, 2])
def test_after_the_result_the_answer_is_text(local: Runner, seed: int) -> None:
    candidate = local.candidate(ask(answered({"location": "Boston, MA"}), seed=seed, max_tokens=60))
    assert not calls_of(candidate)
    assert text_of(candidate).strip()


@pytest.mark.parametrize("question", ["Write a haiku about autumn.", "What is 2+2?", "Tell me a joke."])
def test_a_question_no_tool_answers_gets_text(local: Runner, question: str) -> None:
    candidate = local.candidate(ask([user(question)], seed=1, max_tokens=40))
    assert not calls_of(candidate)
    assert text_of(candidate).strip()


@pytest.mark.parametrize("question", [QUESTION, "Write a haiku about autumn."])
def test_the_same_seed_gives_the_same_answer(local: Runner, question: str) -> None:
    first, again = (local.candidate(ask([user(question)], seed=7, max_tokens=40)) for _ in range(2))
    assert [(c.name, c.args) for c in calls_of(first)] == [(c.name, c.args) for c in calls_of(again)]
    assert text_of(first) == text_of(again)


def test_the_request_bias_moves_the_decision(local: Runner) -> None:
    never = local.candidate(ask([user(QUESTION)], seed=1, max_tokens=40), tuning=Tuning(tool_call_bias=-100))
    assert not calls_of(never) and text_of(never).strip()
    always = local.candidate(
        ask([user("Write a haiku about autumn.")], seed=1, max_tokens=60), tuning=Tuning(tool_call_bias=100)
    )
    assert calls_of(always) and calls_of(always)[0].name == "get_current_weather"


def test_free_mode_leaves_the_choice_to_the_model(local: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tool_decision = "free"``: no decision is made (the model's own choice, as before)."""
    model = local.engine.model(local.model)
    monkeypatch.setattr(model, "spec", dataclasses.replace(model.spec, tool_decision="free"))
    scored: list[float] = []
    real = decide.opener_logprob

    def spy(*args: Any) -> float:
        scored.append(real(*args))
        return scored[-1]

    monkeypatch.setattr(decide, "opener_logprob", spy)
    local.candidate(ask([user(QUESTION)], seed=1, max_tokens=8))
    assert scored == []
    monkeypatch.setattr(model, "spec", dataclasses.replace(model.spec, tool_decision="decide"))
    local.candidate(ask([user(QUESTION)], seed=1, max_tokens=8))
    assert len(scored) == 1
