"""JSON Schemas on their way to Gemini (tool parameters, ``response_format``).

Gemini takes real JSON Schema in ``parametersJsonSchema`` and ``responseJsonSchema``, with
``$ref``/``$defs``, ``additionalProperties`` and the rest (pitfalls B1, B3), so schemas are
sent nearly as given: only the root ``$schema`` and ``$id`` annotations go, which the
keyword list Google documents does not include. ``$defs`` are kept, never inlined: inlining
can hit Gemini's nesting limit.
"""

from __future__ import annotations

from typing import Any

from chatgate.errors import InvalidRequest

_DROPPED_AT_ROOT = ("$schema", "$id")


def json_schema(schema: Any, param: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise InvalidRequest("a JSON Schema must be an object", param=param)
    return {k: v for k, v in schema.items() if k not in _DROPPED_AT_ROOT}


def is_empty_object_schema(schema: dict[str, Any]) -> bool:
    """``{"type": "object", "properties": {}}`` and friends: a tool without parameters (B2)."""
    rest = {k: v for k, v in schema.items() if k not in ("type", "properties", "required", "additionalProperties")}
    return (
        not rest
        and schema.get("type", "object") == "object"
        and not schema.get("properties")
        and not schema.get("required")
    )
