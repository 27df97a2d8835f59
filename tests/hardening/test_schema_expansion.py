"""Schemas whose recursive definitions multiply as they unroll: a 400 naming the schema's
field, found quickly, for ``response_format`` and tool ``parameters`` alike; the local
engine keeps serving."""

from __future__ import annotations

import json
import string
from typing import Any

import httpx
import pytest

from chatgate.engines.local import schema as schemas
from chatgate.errors import InvalidRequest
from tests.conftest import MODEL, OPENAPI
from tests.live import LiveServer


def multiplying(definitions: int, refs: int = 2) -> dict[str, Any]:
    """``definitions`` definitions, each referring to ``refs`` of the others (the issue's attack)."""
    names = string.ascii_uppercase[:definitions]
    defs = {
        name: {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"#/$defs/{names[(i + j + 1) % definitions]}"} for j in range(refs)},
        }
        for i, name in enumerate(names)
    }
    return {"$ref": f"#/$defs/{names[0]}", "$defs": defs}


@pytest.mark.parametrize("definitions", [4, 6, 12])
def test_multiplying_definitions_are_refused(definitions: int) -> None:
    schema = multiplying(definitions)
    assert len(json.dumps(schema)) < 2000
    with pytest.raises(InvalidRequest) as err:
        schemas.validate(schema, "response_format.json_schema.schema", "the response_format schema")
    assert err.value.param == "response_format.json_schema.schema"
    assert err.value.code == "schema_too_large"


def test_unrolling_stops_at_the_node_budget() -> None:
    """The work done is bounded by the budget, not by what the schema would grow to."""
    visited = 0
    budget = 1000

    class Counting(dict):  # type: ignore[type-arg]
        def items(self):  # type: ignore[no-untyped-def]
            nonlocal visited
            visited += 1
            return super().items()

    schema = multiplying(6)
    schema["$defs"] = {k: Counting(v) for k, v in schema["$defs"].items()}
    with pytest.raises(schemas.SchemaTooLarge):
        schemas.bounded(schema, max_nodes=budget)
    assert visited <= budget


def test_a_chain_of_definitions_deeper_than_the_nesting_bound_is_refused() -> None:
    defs = {f"d{i}": {"type": "array", "items": {"$ref": f"#/$defs/d{(i + 1) % 300}"}} for i in range(300)}
    with pytest.raises(schemas.SchemaTooLarge):
        schemas.bounded({"$ref": "#/$defs/d0", "$defs": defs})


def test_ordinary_recursion_still_unrolls() -> None:
    tree = {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
            }
        },
    }
    assert schemas.validate(tree, "p", "the schema") is tree
    unrolled = schemas.bounded(tree)
    depth, node = 0, unrolled
    while isinstance(node, dict) and "properties" in node:
        depth, node = depth + 1, node["properties"]["children"]["items"]
    assert depth == schemas.MAX_DEPTH and node is False


def test_cycles_found_in_linear_time_order() -> None:
    """Only definitions on a cycle are unrolled; one that merely reaches a cycle is not."""
    edges = {"#": ["a"], "a": ["b"], "b": ["c"], "c": ["b"], "d": ["d"], "e": []}
    assert schemas._in_cycles(edges) == {"b", "c", "d"}


# --- through a live server with the real model ------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("definitions", [4, 6])
def test_live_server_answers_400_and_keeps_serving(live: LiveServer, auth: dict[str, str], definitions: int) -> None:
    schema = multiplying(definitions)
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    bodies = [
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}},
            "response_format.json_schema.schema",
        ),
        ({"tools": tools}, "tools[0].function.parameters"),
    ]
    for extra, param in bodies:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **extra}
        response = httpx.post(live.url + OPENAPI + "/chat/completions", json=body, headers=auth, timeout=120)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "schema_too_large" and error["param"] == param
    ok = httpx.post(
        live.url + OPENAPI + "/chat/completions",
        headers=auth,
        timeout=120,
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    )
    assert ok.status_code == 200, ok.text
