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
# Keywords whose value is data, not schemas; keywords whose value maps names to schemas.
_DATA = frozenset(("enum", "const", "default", "examples", "required"))
_NAMED = frozenset(("properties", "patternProperties", "dependentSchemas", "$defs", "definitions"))
_OPEN_KEYS = frozenset(("additionalProperties", "patternProperties", "unevaluatedProperties"))

_UNIMPLEMENTED = re.compile(r"Unimplemented keys: \[(.*?)\]")

# Gemini's OpenAPI-subset Schema (``parameters``, ``responseSchema``): its field → JSON Schema.
_OPENAPI_KEPT = {
    "description", "title", "enum", "format", "pattern", "minimum", "maximum", "minLength",
    "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "required", "default",
}


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


def bounded(schema: dict[str, Any], depth: int = MAX_DEPTH) -> dict[str, Any]:
    """``schema`` with its recursive local references unrolled ``depth`` levels deep."""
    defs = {f"#/{key}/{name}": body for key in ("$defs", "definitions")
            if isinstance(schema.get(key), dict) for name, body in schema[key].items()}
    root = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    defs["#"] = root
    recursive = {ref for ref in defs if _reaches(ref, ref, defs)}
    if not recursive:
        return schema

    def walk(node: Any, stack: tuple[str, ...], names: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        if names:  # {property name: schema}
            return {k: walk(v, stack) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in recursive:
            if stack.count(ref) >= depth:
                return False
            siblings = {k: walk(v, stack) for k, v in node.items() if k != "$ref"}
            inlined = walk(defs[ref], stack + (ref,))
            return {**inlined, **siblings} if isinstance(inlined, dict) else inlined
        return {k: (v if k in _DATA else walk(v, stack, k in _NAMED)) for k, v in node.items()}

    out = walk(root, ("#",))
    if isinstance(out, dict):
        kept = {key: schema[key] for key in ("$defs", "definitions") if key in schema}
        out = {**out, **kept}
    return out


def _reaches(start: str, target: str, defs: dict[str, Any]) -> bool:
    seen: set[str] = set()
    todo = list(_refs(defs.get(start)))
    while todo:
        ref = todo.pop()
        if ref == target:
            return True
        if ref in seen or ref not in defs:
            continue
        seen.add(ref)
        todo.extend(_refs(defs[ref]))
    return False


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
            "remove them or use a Gemini model", param=param, code="unsupported_schema")
    raise InvalidRequest(f"{what} is not a valid JSON Schema: {_first_line(message)}", param=param,
                         code="invalid_schema")


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
