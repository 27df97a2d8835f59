"""Validate chatgate's output against OpenAI's own OpenAPI document (``tests/data/openai-openapi``).

The document is OpenAPI 3.1 but still carries 3.0-style ``nullable: true`` markers; each is
turned into a JSON Schema ``null`` alternative first, or real OpenAI responses fail too.
``system_fingerprint`` is tolerated as null, as OpenAI itself sends it.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

OPENAPI = Path(__file__).resolve().parent / "data" / "openai-openapi" / "openapi.json"


def _fix_nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _fix_nullable(v) for k, v in node.items()}
        if node.pop("nullable", False):
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
            kind = node.get("type")
            if isinstance(kind, str):
                node["type"] = [kind, "null"]
            elif isinstance(kind, list) and "null" not in kind:
                node["type"] = [*kind, "null"]
            elif kind is None:
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_fix_nullable(v) for v in node]
    return node


@functools.cache
def _document() -> dict[str, Any]:
    doc = _fix_nullable(json.loads(OPENAPI.read_text()))
    schemas = doc["components"]["schemas"]
    for name in ("CreateChatCompletionResponse", "CreateChatCompletionStreamResponse"):
        fingerprint = schemas[name]["properties"].get("system_fingerprint")
        if fingerprint is not None:
            schemas[name]["properties"]["system_fingerprint"] = {"type": ["string", "null"]}
    return doc


@functools.cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    doc = _document()
    schema = copy.deepcopy(doc["components"]["schemas"][name])
    # Resolve "#/components/..." refs against the whole document.
    schema["components"] = doc["components"]
    cls = jsonschema.validators.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    return cls(schema)


def validate(name: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` is a valid ``name`` object."""
    _validator(name).validate(body)


def validate_completion(body: Any) -> None:
    validate("CreateChatCompletionResponse", body)


def validate_chunk(body: Any) -> None:
    validate("CreateChatCompletionStreamResponse", body)
