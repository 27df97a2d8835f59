"""OpenAI ``ChatCompletionRequest`` → Gemini ``GenerateContentRequest``.

Pure: data in, data out. What Gemini has no field for (the model name to echo, whether to
send usage in the stream, ...) travels beside the request in ``Rendering``.

Message policy (see ``peers-and-pitfalls.md`` B7, B8):
- ``system`` and ``developer`` messages, wherever they stand, become ``systemInstruction``
  parts in order (Gemini has no mid-conversation system turn);
- ``user`` → ``user``, ``assistant`` → ``model``; consecutive turns of one role are merged;
- empty text parts are dropped; a request left with no ``contents`` is a 400.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from msgspec import UNSET

from chatgate.errors import InvalidRequest, Unsupported
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rendering:
    """How to shape the OpenAI answer: what the Gemini request cannot carry."""

    model: str
    stream: bool = False
    include_usage: bool = False


# OpenAI parameters that are valid but have no Gemini counterpart: accepted, ignored, logged.
_IGNORED = (
    "audio", "logit_bias", "logprobs", "top_logprobs", "metadata", "parallel_tool_calls",
    "prediction", "service_tier", "store", "user",
)


def to_gemini(request: o.ChatCompletionRequest, model: str) -> tuple[g.GenerateContentRequest, Rendering]:
    system, contents = _contents(request.messages)
    if not contents:
        raise InvalidRequest(
            "messages must contain at least one user or assistant message", param="messages"
        )
    _reject_untranslated(request)
    for name in _IGNORED:
        if getattr(request, name) not in (None, UNSET):
            log.debug("ignoring parameter %s: no Gemini equivalent", name)
    rendering = Rendering(
        model=model,
        stream=bool(request.stream),
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
    )
    return (
        g.GenerateContentRequest(
            contents=contents,
            system_instruction=g.Content(parts=system) if system else None,
            generation_config=generation_config(request),
        ),
        rendering,
    )


def generation_config(request: o.ChatCompletionRequest) -> g.GenerationConfig | None:
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    config = g.GenerationConfig(
        temperature=request.temperature,
        top_p=request.top_p,
        # max_completion_tokens is the newer name; it wins when both are given.
        max_output_tokens=request.max_completion_tokens or request.max_tokens,
        candidate_count=request.n if request.n and request.n > 1 else None,
        stop_sequences=stop or None,  # Gemini rejects an empty list
        seed=request.seed,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
    )
    return config if config != g.GenerationConfig() else None


def _reject_untranslated(request: o.ChatCompletionRequest) -> None:
    """Features whose translation chatgate does not have yet: a clear 400, never silence."""
    for name in ("tools", "functions", "tool_choice", "function_call"):
        if getattr(request, name) not in (None, UNSET):
            raise Unsupported(f"`{name}` is not supported yet", param=name)
    if request.response_format is not None and not isinstance(request.response_format, o.TextFormat):
        raise Unsupported("structured output is not supported yet", param="response_format")
    if request.reasoning_effort is not None:
        raise Unsupported("`reasoning_effort` is not supported yet", param="reasoning_effort")
    if request.modalities and set(request.modalities) - {"text"}:
        raise Unsupported("only text output is supported", param="modalities")


def _contents(messages: list[o.Message]) -> tuple[list[g.Part], list[g.Content]]:
    system: list[g.Part] = []
    contents: list[g.Content] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if isinstance(message, (o.SystemMessage, o.DeveloperMessage)):
            system.extend(_text_parts(message.content, where))
            continue
        if isinstance(message, o.UserMessage):
            role, parts = "user", _user_parts(message.content, where)
        elif isinstance(message, o.AssistantMessage):
            if message.tool_calls or message.function_call:
                raise Unsupported("assistant tool calls are not supported yet", param=f"{where}.tool_calls")
            role, parts = "model", _text_parts(message.content, where)
        else:
            raise Unsupported(f"`{message.__struct_config__.tag}` messages are not supported yet", param=f"{where}.role")
        if not parts:
            continue
        if contents and contents[-1].role == role:
            contents[-1].parts.extend(parts)
        else:
            contents.append(g.Content(role=role, parts=parts))
    return system, contents


def _text_parts(content: str | list[o.TextPart] | list[o.AssistantPart] | None, where: str) -> list[g.Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [g.Part(text=content)] if content else []
    parts = []
    for j, part in enumerate(content):
        if isinstance(part, o.TextPart):
            if part.text:
                parts.append(g.Part(text=part.text))
        elif isinstance(part, o.RefusalPart):
            if part.refusal:
                parts.append(g.Part(text=part.refusal))
        else:  # pragma: no cover - the decoder admits no other part here
            raise InvalidRequest("unexpected content part", param=f"{where}.content[{j}]")
    return parts


def _user_parts(content: str | list[o.UserPart], where: str) -> list[g.Part]:
    if isinstance(content, str):
        return [g.Part(text=content)] if content else []
    parts = []
    for j, part in enumerate(content):
        if isinstance(part, o.TextPart):
            if part.text:
                parts.append(g.Part(text=part.text))
        else:
            raise Unsupported(
                f"`{part.__struct_config__.tag}` content parts are not supported yet",
                param=f"{where}.content[{j}]",
            )
    return parts
