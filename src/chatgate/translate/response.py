"""Gemini ``GenerateContentResponse`` → OpenAI ``chat.completion``.

A non-streaming answer is the fold of the stream: ``fold`` merges chunks into one response
(text deltas concatenated per candidate, the last finish reason and usage kept), then
``to_chat_completion`` renders it.
"""

from __future__ import annotations

import time
import uuid

from msgspec import UNSET

from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate.request import Rendering

# Gemini finishReason → OpenAI finish_reason (spec §6.3). Unknown values map to "stop".
_CONTENT_FILTER = {
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR", "LANGUAGE",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE",
}


def finish_reason(reason: str | None) -> o.FinishReason:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _CONTENT_FILTER:
        return "content_filter"
    return "stop"


def usage(metadata: g.UsageMetadata | None) -> o.Usage | None:
    """Vertex's arithmetic: ``completion_tokens`` excludes thoughts, which are reported
    as ``reasoning_tokens``; ``total_tokens`` is Gemini's total (spec §1.11)."""
    if metadata is None:
        return None
    prompt = metadata.prompt_token_count or 0
    completion = metadata.candidates_token_count or 0
    thoughts = metadata.thoughts_token_count
    total = metadata.total_token_count
    out = o.Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total if total is not None else prompt + completion + (thoughts or 0),
    )
    if thoughts:
        out.completion_tokens_details = {"reasoning_tokens": thoughts}
    if metadata.cached_content_token_count:
        out.prompt_tokens_details = {"cached_tokens": metadata.cached_content_token_count}
    if metadata.traffic_type:
        out.extra_properties = {"google": {"traffic_type": metadata.traffic_type}}
    return out


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def fold(chunks: list[g.GenerateContentResponse]) -> g.GenerateContentResponse:
    """Merge stream chunks into one response. Adjacent plain text parts are joined."""
    if len(chunks) == 1:
        return chunks[0]
    merged = g.GenerateContentResponse()
    candidates: dict[int, g.Candidate] = {}
    for chunk in chunks:
        for name in ("prompt_feedback", "usage_metadata", "model_version", "create_time", "response_id"):
            value = getattr(chunk, name)
            if value is not None:
                setattr(merged, name, value)
        for position, candidate in enumerate(chunk.candidates or []):
            index = candidate.index if candidate.index is not None else position
            into = candidates.get(index)
            if into is None:
                into = candidates[index] = g.Candidate(index=index, content=g.Content(role="model"))
            for part in candidate.content.parts if candidate.content else []:
                _append_part(into.content.parts, part)  # type: ignore[union-attr]
            for name in ("finish_reason", "finish_message", "safety_ratings", "citation_metadata",
                         "grounding_metadata", "url_context_metadata", "avg_logprobs", "logprobs_result"):
                value = getattr(candidate, name)
                if value is not None:
                    setattr(into, name, value)
    if candidates:
        merged.candidates = [candidates[i] for i in sorted(candidates)]
    return merged


def _append_part(parts: list[g.Part], part: g.Part) -> None:
    last = parts[-1] if parts else None
    if (
        last is not None
        and part.text is not None
        and last.text is not None
        and bool(last.thought) == bool(part.thought)
        and part.thought_signature is None
    ):
        last.text += part.text
    else:
        parts.append(g.Part(**{f: getattr(part, f) for f in part.__struct_fields__}))


def to_chat_completion(
    response: g.GenerateContentResponse,
    rendering: Rendering,
    *,
    completion_id: str | None = None,
    created: int | None = None,
) -> o.ChatCompletion:
    choices = []
    candidates = response.candidates or []
    if not candidates:
        # A blocked prompt has no candidates: still one choice, filtered (pitfall B14).
        reason = "content_filter" if response.prompt_feedback and response.prompt_feedback.block_reason else "stop"
        choices.append(o.Choice(index=0, message=o.ResponseMessage(content=None), finish_reason=reason))
    for position, candidate in enumerate(candidates):
        text = "".join(
            part.text for part in (candidate.content.parts if candidate.content else []) if part.text is not None
        )
        choices.append(
            o.Choice(
                index=candidate.index if candidate.index is not None else position,
                message=o.ResponseMessage(content=text if text or candidate.content else None),
                finish_reason=finish_reason(candidate.finish_reason),
            )
        )
    result = o.ChatCompletion(
        id=completion_id or response.response_id or new_id(),
        created=created or int(time.time()),
        model=rendering.model,
        choices=choices,
    )
    u = usage(response.usage_metadata)
    result.usage = u if u is not None else UNSET
    return result
