"""Structured output on the embedded model: every answer, under any seed, is JSON that
validates against the request's schema (``jsonschema``, formats checked too)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jsonschema
import pytest

from chatgate.protocols import gemini as g
from tests.engines.local.conftest import Runner, text_of, user

pytestmark = pytest.mark.model

SEEDS = (1, 2, 3)

NAME = {"type": "string", "minLength": 1, "maxLength": 24}

MATRIX: list[Any] = [
    pytest.param(
        "Describe a person and their address.",
        {
            "type": "object",
            "properties": {
                "name": NAME,
                "address": {
                    "type": "object",
                    "properties": {"city": NAME, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                    "required": ["city", "zip"],
                    "additionalProperties": False,
                },
            },
            "required": ["name", "address"],
            "additionalProperties": False,
        },
        id="nested-objects-pattern",
    ),
    pytest.param(
        "List some fruits.",
        {
            "type": "object",
            "properties": {"fruits": {"type": "array", "items": NAME, "minItems": 2, "maxItems": 4}},
            "required": ["fruits"],
            "additionalProperties": False,
        },
        id="array-min-max-items",
    ),
    pytest.param(
        "Pick a colour and a size for a T-shirt.",
        {
            "type": "object",
            "properties": {
                "colour": {"enum": ["red", "green", "blue"]},
                "size": {"type": "string", "enum": ["S", "M", "L"]},
                "kind": {"const": "t-shirt"},
            },
            "required": ["colour", "size", "kind"],
            "additionalProperties": False,
        },
        id="enum-const",
    ),
    pytest.param(
        "Describe a book.",
        {
            "type": "object",
            "properties": {
                "title": NAME,
                "subtitle": NAME,
                "pages": {"type": "integer", "minimum": 1, "maximum": 2000},
            },
            "required": ["title"],
            "additionalProperties": False,
        },
        id="required-and-optional",
    ),
    pytest.param(
        "Give me a shape: a circle or a square.",
        {
            "type": "object",
            "properties": {
                "shape": {
                    "oneOf": [
                        {
                            "type": "object",
                            "properties": {
                                "kind": {"const": "circle"},
                                "radius": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                            },
                            "required": ["kind", "radius"],
                            "additionalProperties": False,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "kind": {"const": "square"},
                                "side": {"type": "integer", "minimum": 1, "maximum": 100},
                            },
                            "required": ["kind", "side"],
                            "additionalProperties": False,
                        },
                    ]
                },
                "label": {"anyOf": [NAME, {"type": "integer", "minimum": 0, "maximum": 9}]},
            },
            "required": ["shape", "label"],
            "additionalProperties": False,
        },
        id="anyOf-oneOf",
    ),
    pytest.param(
        "Describe a pet; it may have no nickname.",
        {
            "type": "object",
            "properties": {
                "name": NAME,
                "nickname": {"type": ["string", "null"], "maxLength": 24},
                "age": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 40}, {"type": "null"}]},
            },
            "required": ["name", "nickname", "age"],
            "additionalProperties": False,
        },
        id="nullable",
    ),
    # Recursion is unrolled to schema.MAX_DEPTH levels (see test_recursion_is_bounded).
    pytest.param(
        "A mother named Ann has two children, Bob and Cy, who have no children.",
        {
            "$defs": {
                "person": {
                    "type": "object",
                    "properties": {
                        "name": NAME,
                        "children": {"type": "array", "items": {"$ref": "#/$defs/person"}, "maxItems": 2},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                }
            },
            "type": "object",
            "properties": {"root": {"$ref": "#/$defs/person"}},
            "required": ["root"],
            "additionalProperties": False,
        },
        id="ref-defs-recursive",
    ),
    pytest.param(
        "Register a user account.",
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "email": {"type": "string", "format": "email", "maxLength": 40},
                "birthday": {"type": "string", "format": "date"},
                "created": {"type": "string", "format": "date-time"},
            },
            "required": ["id", "email", "birthday", "created"],
            "additionalProperties": False,
        },
        id="formats",
    ),
    pytest.param(
        "Give a temperature reading.",
        {
            "type": "object",
            "properties": {
                "celsius": {"type": "number", "minimum": -50, "maximum": 60},
                "sensor": {"type": "integer", "minimum": 1, "exclusiveMaximum": 10},
                "ok": {"type": "boolean"},
            },
            "required": ["celsius", "sensor", "ok"],
            "additionalProperties": False,
        },
        id="numeric-bounds",
    ),
]


def _check_formats(value: Any, schema: dict[str, Any]) -> None:
    # jsonschema's FormatChecker skips date-time without an extra package: check it here.
    if isinstance(value, dict):
        for key, sub in value.items():
            _check_formats(sub, schema.get("properties", {}).get(key, {}))
    if schema.get("format") == "date-time":
        datetime.fromisoformat(value)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("prompt", "schema"), MATRIX)
def test_answer_validates_against_schema(local: Runner, prompt: str, schema: dict[str, Any], seed: int) -> None:
    request = g.GenerateContentRequest(
        contents=[user(prompt)],
        generation_config=g.GenerationConfig(
            response_mime_type="application/json", response_json_schema=schema, max_output_tokens=200, seed=seed
        ),
    )
    candidate = local.candidate(request)
    assert candidate.finish_reason == "STOP", text_of(candidate)
    value = json.loads(text_of(candidate))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(value)
    _check_formats(value, schema)


@pytest.mark.parametrize("seed", SEEDS)
def test_json_object_is_an_object(local: Runner, seed: int) -> None:
    request = g.GenerateContentRequest(
        contents=[user("Describe a cat as a JSON object with three short fields.")],
        generation_config=g.GenerationConfig(response_mime_type="application/json", max_output_tokens=120, seed=seed),
    )
    candidate = local.candidate(request)
    if candidate.finish_reason == "STOP":
        assert isinstance(json.loads(text_of(candidate)), dict)
    else:  # cut by max tokens: still the start of an object
        assert text_of(candidate).lstrip().startswith("{")


def test_openapi_response_schema_is_enforced(local: Runner) -> None:
    """``responseSchema`` (Gemini's OpenAPI subset) is enforced like JSON Schema."""
    schema = {
        "type": "OBJECT",
        "properties": {
            "answer": {"type": "STRING", "enum": ["yes", "no"]},
            "why": {"type": "STRING", "nullable": True, "maxLength": 30},
        },
        "required": ["answer", "why"],
    }
    request = g.GenerateContentRequest(
        contents=[user("Is the sky blue?")],
        generation_config=g.GenerationConfig(
            response_mime_type="application/json", response_schema=schema, max_output_tokens=80, seed=1
        ),
    )
    value = json.loads(text_of(local.candidate(request)))
    assert value["answer"] in ("yes", "no")
    assert value["why"] is None or isinstance(value["why"], str)


def test_streamed_json_is_the_same_text(local: Runner) -> None:
    """Streaming sends the JSON as it is written, in several chunks, and they add up to
    the non-streamed answer for the same seed."""
    schema = MATRIX[3].values[1]
    request = g.GenerateContentRequest(
        contents=[user("Describe a book.")],
        generation_config=g.GenerationConfig(
            response_mime_type="application/json",
            response_json_schema=schema,
            max_output_tokens=120,
            seed=7,
            temperature=0,
        ),
    )
    whole = text_of(local.candidate(request))
    chunks = local.chunks(request, stream=True)
    texts = [
        p.text
        for c in chunks
        for cand in c.candidates or []
        for p in (cand.content.parts if cand.content else [])
        if p.text
    ]
    assert len(texts) > 3
    assert "".join(texts) == whole
    json.loads(whole)


def test_recursion_is_bounded(local: Runner) -> None:
    """A recursive schema nests at most MAX_DEPTH levels, so even a model that keeps
    nesting finishes its answer."""
    from chatgate.engines.local.schema import MAX_DEPTH

    person = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": 9},
            "kid": {"type": "array", "items": {"$ref": "#/$defs/p"}, "minItems": 0, "maxItems": 1},
        },
        "required": ["n", "kid"],
        "additionalProperties": False,
    }
    schema = {"$defs": {"p": person}, "$ref": "#/$defs/p"}
    request = g.GenerateContentRequest(
        contents=[user("Write a chain of people, each with one kid, as deep as you can.")],
        generation_config=g.GenerationConfig(
            response_mime_type="application/json",
            response_json_schema=schema,
            max_output_tokens=200,
            seed=3,
            temperature=0,
        ),
    )
    candidate = local.candidate(request)
    assert candidate.finish_reason == "STOP"
    value = json.loads(text_of(candidate))
    jsonschema.validate(value, schema)

    def depth(node: dict[str, Any]) -> int:
        return 1 + max((depth(k) for k in node["kid"]), default=0)

    assert depth(value) <= MAX_DEPTH
