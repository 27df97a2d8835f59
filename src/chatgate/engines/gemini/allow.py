"""What a request may make Google read under chatgate's identity (the confused deputy).

Gemini reads what a request names with the credentials of whoever calls it: a ``gs://``
object or a Files API URI in a file part, a context cache, a RAG corpus or a search
datastore. Behind chatgate that is chatgate's service account, so any client could read
whatever that account can. ``[gemini] allowed_file_uris``, ``allowed_cached_contents`` and
``allowed_retrieval`` list prefixes; when one is set, anything outside it is a 403 naming
the field. The check runs on the canonical request the engine is about to send, so every
way in (image_url, file parts, extra_content, extra_body.google) is covered at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chatgate.config import GeminiSettings
from chatgate.errors import PermissionDenied
from chatgate.protocols import gemini as g

# Resource names inside a retrieval tool, by (camelCase) key; Google takes snake_case too.
_RESOURCE_KEYS = frozenset(("ragCorpus", "ragCorpora", "datastore", "dataStore", "engine", "servingConfig"))
# Retrieval sources that name no resource of chatgate's project but make Google call out
# with credentials the request carries or names: refused whenever the list is set.
_OPAQUE_SOURCES = frozenset(("externalApi", "elasticsearch"))


def check(settings: GeminiSettings, request: g.GenerateContentRequest) -> None:
    """Raise ``PermissionDenied`` for the first resource the settings do not allow."""
    if settings.allowed_file_uris is not None:
        for where, uri in _file_uris(request):
            _require(uri, settings.allowed_file_uris, where, "file URI", "allowed_file_uris")
    if settings.allowed_cached_contents is not None and request.cached_content is not None:
        _require(
            request.cached_content,
            settings.allowed_cached_contents,
            "cachedContent",
            "cached content",
            "allowed_cached_contents",
        )
    if settings.allowed_retrieval is not None:
        for i, tool in enumerate(request.tools or []):
            if tool.retrieval is not None:
                for where, name in _resources(tool.retrieval, f"tools[{i}].retrieval"):
                    _require(name, settings.allowed_retrieval, where, "retrieval source", "allowed_retrieval")


def _require(value: Any, prefixes: list[str], where: str, what: str, key: str) -> None:
    if not isinstance(value, str) or not any(value.startswith(p) for p in prefixes):
        shown = repr(value) if isinstance(value, str) else f"`{where.rpartition('.')[2]}`"
        raise PermissionDenied(
            f"{what} {shown} is not allowed on this server ([gemini] {key})", param=where, code="resource_not_allowed"
        )


def _file_uris(request: g.GenerateContentRequest) -> Iterator[tuple[str, str]]:
    turns = [("systemInstruction", request.system_instruction)] if request.system_instruction else []
    turns += [(f"contents[{i}]", c) for i, c in enumerate(request.contents)]
    for at, content in turns:
        for j, part in enumerate(content.parts):  # type: ignore[union-attr]
            if part.file_data is not None:
                yield f"{at}.parts[{j}].fileData.fileUri", part.file_data.file_uri
            response = part.function_response
            for k, inner in enumerate(response.parts or [] if response is not None else []):
                if inner.file_data is not None:
                    yield f"{at}.parts[{j}].functionResponse.parts[{k}].fileData.fileUri", inner.file_data.file_uri


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def _resources(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every resource name in a retrieval tool, with where it is; an opaque source is
    yielded as its own key, so no prefix allows it."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _resources(item, f"{where}[{i}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            name = _camel(key)
            if name in _OPAQUE_SOURCES:
                yield f"{where}.{key}", None
            elif name in _RESOURCE_KEYS and isinstance(value, list):
                for i, item in enumerate(value):
                    yield f"{where}.{key}[{i}]", item
            elif name in _RESOURCE_KEYS:
                yield f"{where}.{key}", value
            else:
                yield from _resources(value, f"{where}.{key}")
