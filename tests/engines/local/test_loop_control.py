"""Loop control (llama.cpp's DRY sampler), the request's penalties and the default output cap,
on the embedded model."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jsonschema
import pytest

from chatgate.engines.local.llama import Context
from chatgate.protocols import gemini as g
from chatgate.protocols.tuning import Tuning
from tests.engines.local.conftest import Runner, text_of, user

pytestmark = pytest.mark.model

TICKET = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["name", "quantity"],
            },
        },
    },
    "required": ["title", "items"],
}
# Greedy decoding of this prompt repeats one line item until the budget is gone.
LOOPING = "Create an invoice ticket with line items for office supplies."


def ticket(
    prompt: str, *, temperature: float, seed: int = 1, max_tokens: int = 200, **config: Any
) -> g.GenerateContentRequest:
    return g.GenerateContentRequest(
        contents=[user(prompt)],
        generation_config=g.GenerationConfig(
            temperature=temperature,
            seed=seed,
            max_output_tokens=max_tokens,
            response_mime_type="application/json",
            response_json_schema=TICKET,
            **config,
        ),
    )


def configured(local: Runner, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> None:
    model = local.engine.model(local.model)
    monkeypatch.setattr(model, "spec", dataclasses.replace(model.spec, **settings))


def test_loop_control_ends_a_repetition_the_plain_model_falls_into(
    local: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as off:
        configured(local, off, loop_control=0.0)
        plain = local.candidate(ticket(LOOPING, temperature=0))
    assert plain.finish_reason == "MAX_TOKENS", "the plain model no longer loops on this prompt: pick another"
    controlled = local.candidate(ticket(LOOPING, temperature=0))
    assert controlled.finish_reason == "STOP"
    answer = json.loads(text_of(controlled))
    jsonschema.validate(answer, TICKET)


def test_loop_control_never_breaks_the_json(local: Runner) -> None:
    """At temperature 1 every answer that ends is valid; one cut by max_tokens is "length"."""
    finished = 0
    for seed in (1, 2, 3):
        candidate = local.candidate(
            ticket(
                "Make a ticket for a shopping receipt with its line items.", temperature=1.0, seed=seed, max_tokens=300
            )
        )
        assert candidate.finish_reason in ("STOP", "MAX_TOKENS")
        if candidate.finish_reason == "STOP":
            jsonschema.validate(json.loads(text_of(candidate)), TICKET)
            finished += 1
    assert finished


def test_same_seed_same_answer_under_loop_control(local: Runner) -> None:
    first = local.candidate(ticket(LOOPING, temperature=0.7, seed=5))
    second = local.candidate(ticket(LOOPING, temperature=0.7, seed=5))
    assert text_of(first) == text_of(second)


def test_penalties_reach_the_sampler(local: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    sampler = Context.sampler

    def spy(self: Context, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return sampler(self, **kwargs)

    monkeypatch.setattr(Context, "sampler", spy)
    prompt = [user("Write a list of ten fruits, one per line.")]
    plain = local.candidate(
        g.GenerateContentRequest(
            contents=prompt, generation_config=g.GenerationConfig(temperature=0, max_output_tokens=40)
        )
    )
    penalised = local.candidate(
        g.GenerateContentRequest(
            contents=prompt,
            generation_config=g.GenerationConfig(
                temperature=0, max_output_tokens=40, frequency_penalty=1.5, presence_penalty=0.5
            ),
        )
    )
    assert (seen[0]["frequency_penalty"], seen[0]["presence_penalty"], seen[0]["dry"]) == (0.0, 0.0, None)
    assert (seen[1]["frequency_penalty"], seen[1]["presence_penalty"]) == (1.5, 0.5)
    # Greedy decoding: the only way the answer can change is the penalties in the chain.
    assert text_of(plain) != text_of(penalised)


def test_text_loop_control_is_configurable(local: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    sampler = Context.sampler

    def spy(self: Context, **kwargs: Any) -> Any:
        seen.append(kwargs["dry"])
        return sampler(self, **kwargs)

    monkeypatch.setattr(Context, "sampler", spy)
    configured(local, monkeypatch, text_loop_control=1.5)
    local.candidate(
        g.GenerateContentRequest(
            contents=[user("Hi")], generation_config=g.GenerationConfig(temperature=0, max_output_tokens=2)
        )
    )
    assert seen[0] is not None and seen[0].multiplier == 1.5 and "\n" in seen[0].breakers


def test_default_output_cap_applies_only_when_the_request_names_none(
    local: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured(local, monkeypatch, max_output_tokens=3)
    prompt = [user("Write a long story about a magic backpack.")]
    capped = local.chunks(g.GenerateContentRequest(contents=prompt))
    assert capped[-1].candidates is not None and capped[-1].candidates[0].finish_reason == "MAX_TOKENS"
    assert capped[-1].usage_metadata is not None and capped[-1].usage_metadata.candidates_token_count == 3
    named = local.chunks(
        g.GenerateContentRequest(contents=prompt, generation_config=g.GenerationConfig(max_output_tokens=6))
    )
    assert named[-1].usage_metadata is not None and named[-1].usage_metadata.candidates_token_count == 6


def test_the_request_sets_loop_control(local: Runner) -> None:
    """``extra_body.chatgate.loop_control`` (``Tuning``) reaches the sampler: 0 lets the plain
    model loop where the configured default ends the repetition, and the reverse."""
    plain = local.candidate(ticket(LOOPING, temperature=0), tuning=Tuning(loop_control=0))
    assert plain.finish_reason == "MAX_TOKENS"
    controlled = local.candidate(ticket(LOOPING, temperature=0), tuning=Tuning(loop_control=0.8))
    assert controlled.finish_reason == "STOP"
    jsonschema.validate(json.loads(text_of(controlled)), TICKET)
