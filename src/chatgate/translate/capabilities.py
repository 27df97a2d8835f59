"""What a canonical request needs from the engine that runs it.

Engines other than Gemini (the local llama.cpp engine) call ``check`` before generating,
so a request using something they cannot do is a 400 that says what, never a silent drop.
"""

from __future__ import annotations

from chatgate.errors import Unsupported
from chatgate.protocols import gemini as g

# The kinds of media input, by MIME type prefix.
_MEDIA = (("image/", "image input"), ("audio/", "audio input"), ("video/", "video input"))


def _media_kind(mime: str | None) -> str:
    for prefix, kind in _MEDIA:
        if (mime or "").startswith(prefix):
            return kind
    return "document input"


def needs(request: g.GenerateContentRequest) -> list[str]:
    """The capabilities ``request`` uses beyond text, in a stable order, each named as a
    user would read it: "image input", "image output", "function calling", "Google tool
    `googleSearch`", ..."""
    found: dict[str, None] = {}
    for content in request.contents:
        for part in content.parts:
            if part.inline_data is not None:
                found[_media_kind(part.inline_data.mime_type)] = None
            elif part.file_data is not None:
                found[_media_kind(part.file_data.mime_type)] = None
            if part.function_response is not None and part.function_response.parts:
                found["multimodal function responses"] = None
    for tool in request.tools or []:
        if tool.function_declarations:
            found["function calling"] = None
        for name in tool.__struct_fields__:
            if name != "function_declarations" and getattr(tool, name) is not None:
                camel = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
                found[f"Google tool `{camel}`"] = None
    config = request.generation_config
    for modality in (config.response_modalities if config else None) or []:
        if modality != "TEXT":
            found[f"{modality.lower()} output"] = None
    if request.cached_content:
        found["cached content"] = None
    return list(found)


def check(request: g.GenerateContentRequest, supported: set[str], model: str) -> None:
    """Raise ``Unsupported`` for the first need of ``request`` outside ``supported``."""
    for need in needs(request):
        if need not in supported:
            raise Unsupported(f"model {model!r} does not support {need}")
