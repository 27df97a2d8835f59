from __future__ import annotations

import json
from typing import Any

import msgspec

from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate.request import Rendering, to_gemini


def req(messages: list[dict[str, Any]] | None = None, **fields: Any) -> o.ChatCompletionRequest:
    body = {"model": "google/gemini-2.5-flash", "messages": messages or [{"role": "user", "content": "hi"}], **fields}
    return msgspec.json.decode(json.dumps(body), type=o.ChatCompletionRequest)


def wire(
    messages: list[dict[str, Any]] | None = None, model: str = "google/gemini-2.5-flash", **fields: Any
) -> dict[str, Any]:
    """The Gemini request body (as JSON) for an OpenAI request."""
    request, _ = to_gemini(req(messages, **fields), model)
    return json.loads(g.encoder.encode(request))


def rendering(messages: list[dict[str, Any]] | None = None, **fields: Any) -> Rendering:
    return to_gemini(req(messages, **fields), "google/gemini-2.5-flash")[1]


def response(body: dict[str, Any]) -> g.GenerateContentResponse:
    return msgspec.convert(body, g.GenerateContentResponse)


def candidate(*parts: dict[str, Any], finish: str | None = "STOP", index: int = 0, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"index": index, "content": {"role": "model", "parts": list(parts)}, **extra}
    if finish:
        c["finishReason"] = finish
    return c


def as_json(obj: Any) -> Any:
    return json.loads(msgspec.json.encode(obj))
