"""The canonical request, as a local chat model sees it: a list of chat messages for the
model's own chat template, plus the sampling options. What a text-only local model cannot
do is refused here, with a 400 that says so."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatgate.errors import Unsupported
from chatgate.protocols import gemini as g

log = logging.getLogger(__name__)

# OpenAI's defaults, which the request's own values replace.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1


def messages(request: g.GenerateContentRequest, model: str) -> list[dict[str, str]]:
    """``systemInstruction`` and ``contents`` as chat-template messages."""
    _check_request(request, model)
    out: list[dict[str, str]] = []
    if request.system_instruction and request.system_instruction.parts:
        text = _text(request.system_instruction.parts, model, "systemInstruction")
        if text:
            out.append({"role": "system", "content": text})
    for i, content in enumerate(request.contents):
        role = "assistant" if content.role == "model" else "user"
        out.append({"role": role, "content": _text(content.parts, model, f"contents[{i}]")})
    return out


def sampling(request: g.GenerateContentRequest) -> Sampling:
    config = request.generation_config or g.GenerationConfig()
    return Sampling(
        temperature=DEFAULT_TEMPERATURE if config.temperature is None else config.temperature,
        top_p=DEFAULT_TOP_P if config.top_p is None else config.top_p,
        frequency_penalty=config.frequency_penalty or 0.0,
        presence_penalty=config.presence_penalty or 0.0,
        seed=config.seed,
        max_tokens=config.max_output_tokens,
        stop=tuple(config.stop_sequences or ()),
        n=config.candidate_count or 1,
    )


def _text(parts: list[g.Part], model: str, where: str) -> str:
    texts = []
    for part in parts:
        if part.text is not None:
            texts.append(part.text)
        elif part.inline_data is not None or part.file_data is not None:
            mime = (part.inline_data or part.file_data).mime_type or "media"  # type: ignore[union-attr]
            raise Unsupported(
                f"model {model!r} is a text-only local model: it cannot take {mime} input",
                param="messages", code="unsupported_content",
            )
        elif part.function_call is not None or part.function_response is not None:
            raise Unsupported(
                f"model {model!r} does not support tool calls yet", param="messages", code="unsupported_content"
            )
        else:
            raise Unsupported(f"model {model!r} cannot take this kind of content ({where})", param="messages")
    # Messages merged into one turn were separate paragraphs.
    return "\n\n".join(texts)


def _check_request(request: g.GenerateContentRequest, model: str) -> None:
    config = request.generation_config or g.GenerationConfig()
    if request.tools:
        native = [t for t in request.tools if t.function_declarations is None]
        if native:
            raise Unsupported(f"Google's native tools (search, code execution, ...) need Gemini; {model!r} is a local model",
                              param="tools")
        raise Unsupported(f"tool calling on local model {model!r} is not supported yet", param="tools")
    modalities = {m.upper() for m in config.response_modalities or ()} - {"TEXT"}
    if modalities:
        raise Unsupported(f"local model {model!r} produces text only, not {', '.join(sorted(modalities)).lower()}",
                          param="modalities")
    if config.response_mime_type not in (None, "text/plain"):
        raise Unsupported(f"structured output on local model {model!r} is not supported yet", param="response_format")
    if request.cached_content:
        raise Unsupported("cached contents are a Gemini feature", param="extra_body.google.cached_content")
    for name in ("safety_settings", "labels"):
        if getattr(request, name):
            log.debug("local model %s ignores %s", model, name)
