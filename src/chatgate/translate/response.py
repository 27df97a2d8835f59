"""Gemini ``GenerateContentResponse`` → OpenAI ``chat.completion`` (spec §1.7–§1.11, §6).

A non-streaming answer is the fold of the stream: ``fold`` merges chunks into one response
(text deltas joined per candidate, streamed function-call arguments assembled, the last
finish reason and usage kept), then ``to_chat_completion`` renders it, its parts as
``render.py`` says and:

- ``functionCall`` → ``tool_calls`` (or ``function_call`` for legacy ``functions``);
- a thought signature → on its tool call, else on ``message.extra_content.google``;
- the first generated image → ``message.audio`` with ``extra_content.google.mime_type``;
  further images in ``message.extra_content.google.images``;
- citations with a URL → ``annotations``; grounding and URL-context metadata are passed
  through raw in ``message.extra_content.google``;
- a blocked prompt → one choice, ``finish_reason: "content_filter"``, ``content: null``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate import tools
from chatgate.translate.partial_args import ArgsWriter
from chatgate.translate.render import PartRenderer, Rendered
from chatgate.translate.request import Rendering

# Gemini finishReason → OpenAI finish_reason (spec §6.3). Unknown values map to "stop".
_CONTENT_FILTER = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MODEL_ARMOR",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "NO_IMAGE",
    }
)


def finish_reason(reason: str | None, *, called: bool = False, legacy: bool = False) -> o.FinishReason:
    """A candidate that called a function finishes with ``tool_calls`` whatever Gemini says
    (it reports STOP, pitfall B10)."""
    if called:
        return "function_call" if legacy else "tool_calls"
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
    completion = metadata.candidates_token_count or 0  # absent when thinking ate the budget (B17)
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


# --- fold ---------------------------------------------------------------------------------


def fold(chunks: list[g.GenerateContentResponse]) -> g.GenerateContentResponse:
    """Merge stream chunks into one response. Adjacent text parts of one kind are joined;
    a function call streamed as ``partialArgs`` becomes one call with its ``args``."""
    merged = g.GenerateContentResponse()
    candidates: dict[int, g.Candidate] = {}
    open_calls: dict[int, tuple[g.FunctionCall, ArgsWriter]] = {}
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
            assert into.content is not None
            for part in candidate.content.parts if candidate.content else []:
                _fold_part(into.content.parts, part, open_calls, index)
            for name in (
                "finish_reason",
                "finish_message",
                "safety_ratings",
                "citation_metadata",
                "grounding_metadata",
                "url_context_metadata",
                "avg_logprobs",
                "logprobs_result",
            ):
                value = getattr(candidate, name)
                if value is not None:
                    setattr(into, name, value)
    for call, writer in open_calls.values():  # a stream cut short: close what was opened
        _finish_call(call, writer)
    if candidates:
        merged.candidates = [candidates[i] for i in sorted(candidates)]
    return merged


def _copy(part: g.Part) -> g.Part:
    return g.Part(**{f: getattr(part, f) for f in part.__struct_fields__})


def _fold_part(
    parts: list[g.Part], part: g.Part, open_calls: dict[int, tuple[g.FunctionCall, ArgsWriter]], index: int
) -> None:
    call = part.function_call
    current = open_calls.get(index)
    if call is not None:
        # A nameless call part (or one with the open call's id) continues the open call.
        continuing = current is not None and (not call.name or (call.id is not None and call.id == current[0].id))
        if continuing or call.partial_args is not None or call.will_continue:
            if not continuing:
                if current is not None:
                    _finish_call(*current)
                new = g.FunctionCall(id=call.id, name=call.name)
                copy = _copy(part)
                copy.function_call = new
                parts.append(copy)
                current = open_calls[index] = (new, ArgsWriter())
            elif part.thought_signature and current is not None:
                opened = current[0]
                owner = next(p for p in reversed(parts) if p.function_call is opened)
                owner.thought_signature = owner.thought_signature or part.thought_signature
            assert current is not None
            if call.partial_args:
                current[1].feed(call.partial_args)
            if not call.will_continue:
                _finish_call(*current)
                del open_calls[index]
            return
        if current is not None:
            _finish_call(*current)
            del open_calls[index]
    last = parts[-1] if parts else None
    if (
        last is not None
        and part.text is not None
        and last.text is not None
        and bool(last.thought) == bool(part.thought)
        and last.thought_signature is None
        and part.thought_signature is None
    ):
        last.text += part.text
    elif part != g.Part():
        parts.append(_copy(part))


def _finish_call(call: g.FunctionCall, writer: ArgsWriter) -> None:
    writer.close()
    call.args = json.loads(writer.text)


# --- render -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Message(Rendered):
    tool_calls: list[o.ToolCallOut] = field(default_factory=list)


def render_parts(parts: list[g.Part], rendering: Rendering) -> _Message:
    out = _Message()
    text = PartRenderer(rendering.thought_tag_marker)
    for part in parts:
        if part.function_call is not None:
            text.close(out)
            out.tool_calls.append(tools.tool_call_out(part.function_call, part.thought_signature))
        else:
            text.add(part, out)
    text.close(out)
    return out


def url_citations(candidate: g.Candidate) -> list[dict[str, Any]]:
    """Citations that name a URL → OpenAI ``url_citation`` annotations (indexes as Gemini
    gives them); citations without a URL have no OpenAI form and are left out."""
    metadata = candidate.citation_metadata or {}
    cites = metadata.get("citations") or metadata.get("citationSources") or []
    out = []
    for cite in cites:
        if isinstance(cite, dict) and cite.get("uri"):
            out.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "url": cite["uri"],
                        "title": cite.get("title") or "",
                        "start_index": int(cite.get("startIndex") or 0),
                        "end_index": int(cite.get("endIndex") or 0),
                    },
                }
            )
    return out


def candidate_extras(candidate: g.Candidate) -> dict[str, Any]:
    """What Gemini said about a candidate that OpenAI has no field for."""
    extras: dict[str, Any] = {}
    if candidate.finish_reason and candidate.finish_reason not in ("STOP", "MAX_TOKENS"):
        extras["finish_reason"] = candidate.finish_reason
    if candidate.finish_message:
        extras["finish_message"] = candidate.finish_message
    if candidate.grounding_metadata:
        extras["grounding_metadata"] = candidate.grounding_metadata
    if candidate.url_context_metadata:
        extras["url_context_metadata"] = candidate.url_context_metadata
    return extras


def block_extras(feedback: g.PromptFeedback | None) -> dict[str, Any]:
    if feedback is None:
        return {}
    extras: dict[str, Any] = {"block_reason": feedback.block_reason or "BLOCKED_REASON_UNSPECIFIED"}
    if feedback.block_reason_message:
        extras["block_reason_message"] = feedback.block_reason_message
    return extras


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
        message = o.ResponseMessage(content=None)
        blocked = block_extras(response.prompt_feedback)
        if blocked:
            message.extra_content = {"google": blocked}
        reason: o.FinishReason = "content_filter" if response.prompt_feedback is not None else "stop"
        choices.append(o.Choice(index=0, message=message, finish_reason=reason))
    for position, candidate in enumerate(candidates):
        choices.append(_choice(candidate, position, rendering))
    result = o.ChatCompletion(
        id=completion_id or response.response_id or new_id(),
        created=created or int(time.time()),
        model=rendering.model,
        choices=choices,
    )
    u = usage(response.usage_metadata)
    result.usage = u if u is not None else UNSET
    return result


def _choice(candidate: g.Candidate, position: int, rendering: Rendering) -> o.Choice:
    rendered = render_parts(candidate.content.parts if candidate.content else [], rendering)
    message = o.ResponseMessage(content="".join(rendered.content) if rendered.content else None)
    if rendered.tool_calls:
        if rendering.legacy_functions:
            first = rendered.tool_calls[0]
            message.function_call = o.FunctionCallOut(name=first.function.name, arguments=first.function.arguments)
        else:
            message.tool_calls = rendered.tool_calls
    google: dict[str, Any] = candidate_extras(candidate)
    if rendered.signature:
        google["thought_signature"] = rendered.signature
    if rendered.images:
        message.audio = rendered.images[0]
        if len(rendered.images) > 1:
            google["images"] = [
                {"data": i["data"], "mime_type": i["extra_content"]["google"]["mime_type"]} for i in rendered.images[1:]
            ]
    if google:
        message.extra_content = {"google": google}
    cites = url_citations(candidate)
    if cites:
        message.annotations = cites
    return o.Choice(
        index=candidate.index if candidate.index is not None else position,
        message=message,
        finish_reason=finish_reason(
            candidate.finish_reason, called=bool(rendered.tool_calls), legacy=rendering.legacy_functions
        ),
    )
