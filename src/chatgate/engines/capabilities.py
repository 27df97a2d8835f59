"""What a canonical request needs from the engine that runs it: the one place that says so.

``needs`` names every capability a request uses beyond text in and text out. An engine
that cannot do everything Gemini does (the local llama.cpp engine) calls ``check`` with
the capabilities it has before generating, so a request using something it cannot do is
a 400 that says what and names the field that asked for it, never a silent drop.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from chatgate.errors import Unsupported
from chatgate.protocols import gemini as g


@dataclass(frozen=True, slots=True)
class _Asked:
    """Where an OpenAI client asks for a capability, for the error that refuses it."""

    param: str
    code: str | None = None


_CONTENT = _Asked("messages", code="unsupported_content")
_TOOLS = _Asked("tools")
_MODALITIES = _Asked("modalities")
_CACHED = _Asked("extra_body.google.cached_content")

# The kinds of media input, by MIME type prefix.
_MEDIA = (("image/", "image input"), ("audio/", "audio input"), ("video/", "video input"))


def _media_kind(mime: str | None) -> str:
    for prefix, kind in _MEDIA:
        if (mime or "").startswith(prefix):
            return kind
    return "document input"


def _needs(request: g.GenerateContentRequest) -> dict[str, _Asked]:
    found: dict[str, _Asked] = {}
    system = [request.system_instruction] if request.system_instruction is not None else []
    for content in [*system, *request.contents]:
        for part in content.parts:
            if part.inline_data is not None:
                found[_media_kind(part.inline_data.mime_type)] = _CONTENT
            elif part.file_data is not None:
                found[_media_kind(part.file_data.mime_type)] = _CONTENT
            if part.function_response is not None and part.function_response.parts:
                found["multimodal function responses"] = _CONTENT
    for tool in request.tools or []:
        if tool.function_declarations:
            found["function calling"] = _TOOLS
        for name in tool.__struct_fields__:
            if name != "function_declarations" and getattr(tool, name) is not None:
                camel = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
                found[f"Google tool `{camel}`"] = _TOOLS
    config = request.generation_config
    for modality in (config.response_modalities if config else None) or []:
        if modality.upper() != "TEXT":
            found[f"{modality.lower()} output"] = _MODALITIES
    if request.cached_content:
        found["cached content"] = _CACHED
    return found


def needs(request: g.GenerateContentRequest) -> list[str]:
    """The capabilities ``request`` uses beyond text, in a stable order, each named as a
    user would read it: "image input", "image output", "function calling", "Google tool
    `googleSearch`", ..."""
    return list(_needs(request))


def check(request: g.GenerateContentRequest, supported: Collection[str], model: str) -> None:
    """Raise ``Unsupported`` for the first need of ``request`` outside ``supported``."""
    for need, asked in _needs(request).items():
        if need not in supported:
            raise Unsupported(
                f"model {model!r} does not support {need}; Gemini models do", param=asked.param, code=asked.code
            )
