"""Run a request through the Gemini engine and chatgate's translators, by the front's own
pipeline (``chatgate.front.pipeline``)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from chatgate.engines.gemini import GeminiEngine
from chatgate.errors import ChatgateError
from chatgate.front import pipeline
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate.stream import StreamTranslator
from tests.openapi import validate_chunk, validate_completion

MODEL = "gemini-2.5-flash"


def openai_request(**fields: Any) -> o.ChatCompletionRequest:
    body = {"model": f"google/{MODEL}", "messages": [{"role": "user", "content": "hi"}], **fields}
    return msgspec.json.decode(json.dumps(body), type=o.ChatCompletionRequest)


async def complete(engine: GeminiEngine, request: o.ChatCompletionRequest) -> dict[str, Any]:
    """Non-streaming: the validated chat.completion body."""
    run, rendering = pipeline.openai_run(engine, MODEL, f"google/{MODEL}", request, f"google/{MODEL}")
    body = json.loads(msgspec.json.encode(await pipeline.chat_completion(run, rendering)))
    validate_completion(body)
    return body


async def stream(
    engine: GeminiEngine, request: o.ChatCompletionRequest
) -> tuple[list[dict[str, Any]], ChatgateError | None]:
    """Streaming: the validated chunks of the SSE body, and the error that ended the stream,
    if one did (before the first chunk, or after it)."""
    run, rendering = pipeline.openai_run(engine, MODEL, f"google/{MODEL}", request, f"google/{MODEL}")
    errors: list[ChatgateError] = []

    def failed(exc: Exception) -> bytes:
        if not isinstance(exc, ChatgateError):
            raise exc
        errors.append(exc)
        return b""

    try:
        opened = await pipeline.Stream.open(run)
    except ChatgateError as exc:
        return [], exc
    body = b"".join([frame async for frame in opened.events(StreamTranslator(rendering), failed=failed)])
    bodies = [json.loads(frame.removeprefix(b"data: ")) for frame in body.split(b"\n\n") if frame]
    for chunk in bodies:
        validate_chunk(chunk)
    return bodies, errors[0] if errors else None


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client builds from the chunks of choice 0: content, tool calls, finish reason."""
    content, calls, finish, extras = [], {}, None, {}
    roles = 0
    for chunk in chunks:
        for choice in chunk["choices"]:
            if choice["index"] != 0:
                continue
            delta = choice["delta"]
            roles += "role" in delta
            if delta.get("content"):
                content.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                into = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": "", "extra": None})
                if "id" in call:
                    assert into["id"] is None, "id repeated on a later delta"
                    into["id"] = call["id"]
                fn = call.get("function") or {}
                if "name" in fn:
                    assert not into["name"], "name repeated on a later delta"
                    into["name"] = fn["name"]
                into["arguments"] += fn.get("arguments") or ""
                if "extra_content" in call:
                    into["extra"] = call["extra_content"]
            if "extra_content" in delta:
                extras.update(delta["extra_content"].get("google", {}))
            if choice.get("finish_reason"):
                assert finish is None, "finish_reason sent twice"
                finish = choice["finish_reason"]
    return {
        "content": "".join(content) if content else None,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
        "roles": roles,
        "extra": extras,
        "usage": next((c["usage"] for c in chunks if c.get("usage")), None),
    }


def response_chunk(parts: list[dict[str, Any]], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], **extra}


def decode_response(body: dict[str, Any]) -> g.GenerateContentResponse:
    return msgspec.convert(body, g.GenerateContentResponse)
