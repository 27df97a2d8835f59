"""Validate request bodies against the Vertex AI discovery documents.

The documents ship in the google-api-python-client wheel
(``googleapiclient/discovery_cache/documents/aiplatform.v1.json``, ``…v1beta1.json``).
Discovery schemas are a small JSON-Schema dialect: ``$ref`` by schema id, ``type``
(``object``, ``array``, ``string``, ``integer``, ``number``, ``boolean``, ``any``),
``properties``, ``items``, ``additionalProperties``, ``enum``, ``format``. Objects are treated
as closed: a key that is neither a property nor allowed by ``additionalProperties`` is an
error, which is what catches snake_case or invented fields.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from pathlib import Path
from typing import Any

import googleapiclient

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


class DiscoveryError(AssertionError):
    pass


@functools.cache
def document(version: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS / f"aiplatform.{version}.json").read_text())


def request_schema(version: str) -> str:
    return (
        "GoogleCloudAiplatformV1GenerateContentRequest"
        if version == "v1"
        else "GoogleCloudAiplatformV1beta1GenerateContentRequest"
    )


def validate(value: Any, schema_id: str, version: str = "v1beta1") -> None:
    doc = document(version)
    _check(value, doc["schemas"][schema_id], "$", doc["schemas"])


def _base64(text: str) -> bool:
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decode(padded.encode("ascii"), validate=True) if decode is base64.b64decode else decode(
                padded.encode("ascii")
            )
            return True
        except (binascii.Error, ValueError):
            continue
    return False


def _check(value: Any, schema: dict[str, Any], path: str, schemas: dict[str, Any]) -> None:
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type")
    if kind in (None, "any"):
        return
    if kind == "object":
        if not isinstance(value, dict):
            raise DiscoveryError(f"{path}: expected an object, got {type(value).__name__}")
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                _check(item, props[key], f"{path}.{key}", schemas)
            elif extra is not None:
                _check(item, extra, f"{path}.{key}", schemas)
            else:
                raise DiscoveryError(f"{path}: unknown field {key!r} (known: {', '.join(sorted(props))})")
    elif kind == "array":
        if not isinstance(value, list):
            raise DiscoveryError(f"{path}: expected an array, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, schema.get("items", {}), f"{path}[{i}]", schemas)
    elif kind == "string":
        fmt = schema.get("format")
        if fmt in ("int64", "uint64") and isinstance(value, int) and not isinstance(value, bool):
            return  # proto3 JSON accepts numbers for 64-bit integers too
        if not isinstance(value, str):
            raise DiscoveryError(f"{path}: expected a string, got {type(value).__name__}")
        if "enum" in schema and value not in schema["enum"]:
            raise DiscoveryError(f"{path}: {value!r} is not one of {schema['enum']}")
        if fmt == "byte" and not _base64(value):
            raise DiscoveryError(f"{path}: not base64")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise DiscoveryError(f"{path}: expected an integer, got {value!r}")
    elif kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise DiscoveryError(f"{path}: expected a number, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise DiscoveryError(f"{path}: expected a boolean, got {value!r}")
    else:  # pragma: no cover - a dialect feature this validator does not know
        raise DiscoveryError(f"{path}: unsupported discovery type {kind!r}")
