"""JSON Schemas → llguidance grammars, for constrained decoding on the local engine.

llguidance compiles a JSON Schema into a grammar it enforces token by token. It refuses
what it cannot enforce (``uniqueItems``, ``not``, ``if``/``then``, ``contains``, ...) by
naming the keywords, and chatgate turns that into a 400 that names them too: a schema is
either enforced or refused, never silently loosened.

Whitespace between JSON tokens is allowed but bounded (at most 16 characters): a model
writes better JSON the way it learnt to (``{\n  "name": ...``; forced into compact JSON,
SmolLM2 writes garbage keys), and the bound keeps a small model from looping on newlines
until ``max_tokens``.

Recursive schemas (a ``$ref`` that leads back to itself) are unrolled to ``MAX_DEPTH``
levels, the innermost reference replaced by ``false`` (an array of them can only be empty,
an optional property of that type is left out): a grammar would enforce the recursion
exactly, but then nothing except ``max_tokens`` stops a small model that keeps nesting.
Definitions that refer to each other multiply as they unroll (4 of them with 2 references
each grow a 433-byte schema to megabytes), so the unrolled schema is capped at
``MAX_EXPANDED_NODES`` nodes and ``MAX_EXPANDED_NESTING`` levels; beyond either, a 400.
For the same reason an object schema with ``properties`` and no word on other properties
gets only those (``closed``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatgate.errors import InvalidRequest, Unsupported

# Applied to every schema (llguidance reads them from the "x-guidance" key).
JSON_OPTIONS = {"whitespace_pattern": r"[\x20\x0A\x0D\x09]{0,16}"}

# What json_object asks for: any JSON object.
ANY_OBJECT: dict[str, Any] = {"type": "object"}
# The arguments of a function declared without parameters.
NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

# How many times a recursive definition may nest inside itself.
MAX_DEPTH = 4
# Bounds on the unrolled schema: objects, arrays and values in all, and how deeply they nest.
MAX_EXPANDED_NODES = 50_000
MAX_EXPANDED_NESTING = 200
# Keywords whose value is data, not schemas; keywords whose value maps names to schemas.
_DATA = frozenset(("enum", "const", "default", "examples", "required"))
_NAMED = frozenset(("properties", "patternProperties", "dependentSchemas", "$defs", "definitions"))
_OPEN_KEYS = frozenset(("additionalProperties", "patternProperties", "unevaluatedProperties"))

_UNIMPLEMENTED = re.compile(r"Unimplemented keys: \[(.*?)\]")

# Gemini's OpenAPI-subset Schema (``parameters``, ``responseSchema``): its field → JSON Schema.
_OPENAPI_KEPT = {
    "description",
    "title",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "default",
}


class SchemaTooLarge(Exception):
    """Unrolling the schema's recursive references would pass the bounds above."""


def from_openapi(schema: Any, param: str) -> dict[str, Any]:
    """Gemini's OpenAPI-subset ``Schema`` (``type: STRING``, ``nullable``, ...) as JSON Schema."""
    if not isinstance(schema, dict):
        raise InvalidRequest("a schema must be an object", param=param)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _OPENAPI_KEPT}
    kind = schema.get("type")
    if isinstance(kind, str) and kind.upper() != "TYPE_UNSPECIFIED":
        out["type"] = kind.lower()
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: from_openapi(v, f"{param}.properties.{k}") for k, v in schema["properties"].items()}
    if "items" in schema:
        out["items"] = from_openapi(schema["items"], f"{param}.items")
    if isinstance(schema.get("anyOf"), list):
        out["anyOf"] = [from_openapi(s, f"{param}.anyOf[{i}]") for i, s in enumerate(schema["anyOf"])]
    if out.get("format") == "enum":  # Gemini's way of saying "a string from `enum`"
        del out["format"]
    return out


def with_options(schema: dict[str, Any]) -> dict[str, Any]:
    return {**closed(bounded(schema)), "x-guidance": JSON_OPTIONS}


def closed(node: Any, names: bool = False) -> Any:
    """Objects that declare ``properties`` and say nothing of other properties get only
    those: JSON Schema would allow any extra key, and a small model given that freedom
    adds keys until ``max_tokens`` cuts the answer. Every answer still validates."""
    if isinstance(node, list):
        return [closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {k: closed(v) for k, v in node.items()}
    out = {k: (v if k in _DATA else closed(v, k in _NAMED)) for k, v in node.items()}
    if isinstance(node.get("properties"), dict) and not _OPEN_KEYS & node.keys():
        out["additionalProperties"] = False
    return out


def bounded(
    schema: dict[str, Any],
    depth: int = MAX_DEPTH,
    max_nodes: int = MAX_EXPANDED_NODES,
    max_nesting: int = MAX_EXPANDED_NESTING,
) -> dict[str, Any]:
    """``schema`` with its recursive local references unrolled ``depth`` levels deep.

    Raises ``SchemaTooLarge`` as soon as the copy passes ``max_nodes`` nodes or
    ``max_nesting`` levels, so the work done on a hostile schema stays bounded too."""
    defs = {
        f"#/{key}/{name}": body
        for key in ("$defs", "definitions")
        if isinstance(schema.get(key), dict)
        for name, body in schema[key].items()
    }
    root = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    defs["#"] = root
    recursive = _in_cycles({ref: _refs(body) for ref, body in defs.items()})
    if not recursive:
        return schema
    nodes = 0

    def walk(node: Any, stack: tuple[str, ...], level: int, names: bool = False) -> Any:
        nonlocal nodes
        nodes += 1
        if nodes > max_nodes:
            raise SchemaTooLarge(f"its recursive references unroll to more than {max_nodes} nodes")
        if level > max_nesting:
            raise SchemaTooLarge(f"its recursive references unroll deeper than {max_nesting} levels")
        if isinstance(node, list):
            return [walk(item, stack, level + 1) for item in node]
        if not isinstance(node, dict):
            return node
        if names:  # {property name: schema}
            return {k: walk(v, stack, level + 1) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in recursive:
            if stack.count(ref) >= depth:
                return False
            siblings = {k: walk(v, stack, level + 1) for k, v in node.items() if k != "$ref"}
            inlined = walk(defs[ref], stack + (ref,), level + 1)
            return {**inlined, **siblings} if isinstance(inlined, dict) else inlined
        return {k: (v if k in _DATA else walk(v, stack, level + 1, k in _NAMED)) for k, v in node.items()}

    out = walk(root, ("#",), 0)
    if isinstance(out, dict):
        kept = {key: schema[key] for key in ("$defs", "definitions") if key in schema}
        out = {**out, **kept}
    return out


def _in_cycles(edges: dict[str, list[str]]) -> set[str]:
    """The definitions that lead back to themselves: members of a strongly connected
    component with a cycle (Kosaraju's algorithm, iterative, linear in the references)."""
    edges = {ref: [r for r in targets if r in edges] for ref, targets in edges.items()}
    order: list[str] = []
    seen: set[str] = set()
    for start in edges:
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(edges[start]))]
        while stack:
            ref, pending = stack[-1]
            nxt = next((r for r in pending if r not in seen), None)
            if nxt is None:
                stack.pop()
                order.append(ref)
            else:
                seen.add(nxt)
                stack.append((nxt, iter(edges[nxt])))
    reverse: dict[str, list[str]] = {ref: [] for ref in edges}
    for ref, targets in edges.items():
        for target in targets:
            reverse[target].append(ref)
    cyclic: set[str] = set()
    assigned: set[str] = set()
    for start in reversed(order):
        if start in assigned:
            continue
        component, todo = [start], [start]
        assigned.add(start)
        while todo:
            for prev in reverse[todo.pop()]:
                if prev not in assigned:
                    assigned.add(prev)
                    component.append(prev)
                    todo.append(prev)
        if len(component) > 1 or start in edges[start]:
            cyclic.update(component)
    return cyclic


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return found + [r for k, v in node.items() if k not in _DATA for r in _refs(v)]


def json_rule(schema: dict[str, Any]) -> str:
    """A Lark rule body enforcing ``schema`` (llguidance's ``%json`` extension)."""
    return "%json " + json.dumps(with_options(schema), ensure_ascii=False)


def validate(schema: Any, param: str, what: str) -> dict[str, Any]:
    """``schema`` if llguidance can enforce it; else the 400 it deserves, naming the
    keywords it cannot enforce or what is wrong with the schema."""
    import llguidance

    if not isinstance(schema, dict):
        raise InvalidRequest(f"{what} must be a JSON Schema object", param=param, code="invalid_schema")
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(with_options(schema))
    except SchemaTooLarge as exc:
        raise InvalidRequest(
            f"{what} is too large for the local engine: {exc}", param=param, code="schema_too_large"
        ) from None
    except (ValueError, TypeError) as exc:  # not serialisable as JSON
        raise InvalidRequest(f"{what} is not a valid JSON Schema: {exc}", param=param, code="invalid_schema") from None
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if not failed:
        return schema
    message = messages[0] if messages else "invalid schema"
    unimplemented = _UNIMPLEMENTED.search(message)
    if unimplemented:
        names = [k.strip().strip('"') for k in unimplemented.group(1).split(",")]
        keywords = ", ".join(f"`{k}`" for k in names)
        raise Unsupported(
            f"{what}: the local engine cannot enforce the JSON Schema keyword(s) {keywords}; "
            "remove them or use a Gemini model",
            param=param,
            code="unsupported_schema",
        )
    raise InvalidRequest(
        f"{what} is not a valid JSON Schema: {_first_line(message)}", param=param, code="invalid_schema"
    )


def check_grammar(grammar: str) -> None:
    """A grammar assembled from validated schemas must compile; if not, it is chatgate's bug."""
    import llguidance

    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if failed:
        raise RuntimeError(f"chatgate built an invalid grammar: {messages[0] if messages else ''}")


def _first_line(message: str) -> str:
    # llguidance errors can carry a grammar dump after the first lines; keep what matters.
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return " ".join(lines[:3])[:300]
