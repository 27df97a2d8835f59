"""Gemini stream chunks → OpenAI ``chat.completion.chunk`` objects (spec §1.8, §5.3).

One ``StreamTranslator`` per response holds the per-choice state OpenAI clients rely on:

- the role goes on each choice's first delta only;
- every tool call gets the next 0-based ``index`` of its choice, counted across chunks
  (pitfall B4); its ``id``, ``type`` and ``name`` come on its first delta only, and the
  arguments either whole (a complete ``functionCall``) or as fragments (``partialArgs``,
  keyed to the open call by id or by having no name, never by name);
- thought text is wrapped in ``<marker>…</marker>`` across deltas when a marker is set;
- a thought signature rides on the delta of the part it came with: on a tool call's first
  delta, else on ``delta.extra_content.google``;
- ``finish_reason`` is sent exactly once per choice, when the stream ends: Gemini may
  repeat ``finishReason`` on every chunk, and a call may have come earlier (B10);
- usage is kept from the last chunk that had it (Gemini repeats it) and sent as its own
  final chunk with ``choices: []`` when the client asked for ``include_usage`` (B11).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from chatgate.protocols import functions
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate import tools
from chatgate.translate.partial_args import ArgsWriter
from chatgate.translate.render import PartRenderer, Rendered
from chatgate.translate.request import Rendering
from chatgate.translate.response import (
    block_extras,
    candidate_extras,
    finish_reason,
    new_id,
    usage,
)


@dataclass(slots=True)
class _OpenCall:
    index: int
    id: str | None
    writer: ArgsWriter = field(default_factory=ArgsWriter)


@dataclass(slots=True)
class _Choice:
    text: PartRenderer  # holds a thought tag open across chunks
    started: bool = False
    reason: str | None = None  # the last finishReason Gemini gave
    calls: int = 0
    open_call: _OpenCall | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Delta(Rendered):
    """A delta under construction."""

    calls: list[o.ToolCallDelta] = field(default_factory=list)


class StreamTranslator:
    def __init__(self, rendering: Rendering, completion_id: str | None = None, created: int | None = None):
        self.rendering = rendering
        # Gemini's responseId when the first chunk has one (as Vertex answers), else ours.
        self._id = completion_id
        self.created = created or int(time.time())
        self._choices: dict[int, _Choice] = {}
        self._usage: g.UsageMetadata | None = None
        self._feedback: g.PromptFeedback | None = None

    @property
    def id(self) -> str:
        if self._id is None:
            self._id = new_id()
        return self._id

    def _chunk(self, choices: list[o.ChunkChoice]) -> o.ChatCompletionChunk:
        chunk = o.ChatCompletionChunk(id=self.id, created=self.created, model=self.rendering.model, choices=choices)
        if self.rendering.include_usage:
            chunk.usage = None
        return chunk

    def feed(self, response: g.GenerateContentResponse) -> list[o.ChatCompletionChunk]:
        if self._id is None and response.response_id:
            self._id = response.response_id
        if response.usage_metadata is not None:
            self._usage = response.usage_metadata
        if response.prompt_feedback is not None and not response.candidates:
            self._feedback = response.prompt_feedback
        out: list[o.ChunkChoice] = []
        for position, candidate in enumerate(response.candidates or []):
            index = candidate.index if candidate.index is not None else position
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _Choice(PartRenderer(self.rendering.thought_tag_marker))
            if candidate.finish_reason:
                state.reason = candidate.finish_reason
            state.extras.update(candidate_extras(candidate))
            delta = _Delta()
            for part in candidate.content.parts if candidate.content else []:
                self._part(part, state, delta)
            choice = self._emit(state, index, delta)
            if choice is not None:
                out.append(choice)
        return [self._chunk(out)] if out else []

    def _part(self, part: g.Part, state: _Choice, delta: _Delta) -> None:
        if part.function_call is not None:
            state.text.close(delta)
            self._call(part.function_call, part.thought_signature, state, delta)
        else:
            state.text.add(part, delta)

    def _call(self, call: g.FunctionCall, signature: str | None, state: _Choice, delta: _Delta) -> None:
        open_call = state.open_call
        continuing = open_call is not None and (not call.name or (call.id is not None and call.id == open_call.id))
        if continuing:
            assert open_call is not None
            fragment = open_call.writer.feed(call.partial_args or [])
            if not call.will_continue:
                fragment += open_call.writer.close(call.args)
                state.open_call = None
            if fragment or signature:
                self._add(
                    delta,
                    o.ToolCallDelta(index=open_call.index, function=o.FunctionDelta(arguments=fragment)),
                    signature,
                )
            return
        self._close_call(state, delta)
        index = state.calls
        state.calls += 1
        streamed = call.partial_args is not None or bool(call.will_continue)
        if streamed:
            state.open_call = _OpenCall(index=index, id=call.id)
            arguments = state.open_call.writer.feed(call.partial_args or [])
            if not call.will_continue:
                arguments += state.open_call.writer.close(call.args)
                state.open_call = None
        else:
            arguments = tools.arguments_text(call.args)
        first = o.ToolCallDelta(
            index=index,
            id=call.id or functions.new_call_id(),
            type="function",
            function=o.FunctionDelta(name=call.name or "", arguments=arguments),
        )
        self._add(delta, first, signature)

    @staticmethod
    def _add(delta: _Delta, call: o.ToolCallDelta, signature: str | None) -> None:
        if signature:
            call.extra_content = {"google": {"thought_signature": signature}}
        delta.calls.append(call)

    def _close_call(self, state: _Choice, delta: _Delta) -> None:
        if state.open_call is not None:
            fragment = state.open_call.writer.close()
            delta.calls.append(
                o.ToolCallDelta(index=state.open_call.index, function=o.FunctionDelta(arguments=fragment))
            )
            state.open_call = None

    def _emit(
        self, state: _Choice, index: int, delta: _Delta, reason: o.FinishReason | None = None
    ) -> o.ChunkChoice | None:
        out = o.Delta()
        text = "".join(delta.content)
        if text:
            out.content = text
        if delta.calls:
            if self.rendering.legacy_functions:
                # Legacy `functions` answer with one function_call: the first call only.
                first = [c for c in delta.calls if c.index == 0 and c.function]
                if first:
                    fn = first[0].function
                    assert isinstance(fn, o.FunctionDelta)
                    out.function_call = fn
            else:
                out.tool_calls = delta.calls
        if delta.images:
            out.audio = delta.images[-1]  # one image per delta (OpenAI's audio is one object)
        if delta.signature:
            out.extra_content = {"google": {"thought_signature": delta.signature}}
            if out.content is UNSET:
                out.content = ""
        if not state.started:
            state.started = True
            out.role = "assistant"
            if out.content is UNSET and not delta.calls:
                out.content = ""
        if out == o.Delta() and reason is None:
            return None
        return o.ChunkChoice(index=index, delta=out, finish_reason=reason)

    def finish(self) -> list[o.ChatCompletionChunk]:
        """Close every choice (open thought tags and streamed calls first) and append the
        usage chunk if one was asked for."""
        closing: list[o.ChunkChoice] = []
        if not self._choices:
            # A blocked prompt yields no candidate at all: still one filtered choice (B14).
            delta = o.Delta(role="assistant", content=None)
            blocked = block_extras(self._feedback)
            if blocked:
                delta.extra_content = {"google": blocked}
            reason: o.FinishReason = "content_filter" if self._feedback is not None else "stop"
            closing.append(o.ChunkChoice(index=0, delta=delta, finish_reason=reason))
        for index, state in sorted(self._choices.items()):
            closed = _Delta()
            state.text.close(closed)
            self._close_call(state, closed)
            reason = finish_reason(state.reason, called=state.calls > 0, legacy=self.rendering.legacy_functions)
            choice = self._emit(state, index, closed, reason)
            assert choice is not None
            if state.extras:
                extra = choice.delta.extra_content if isinstance(choice.delta.extra_content, dict) else {}
                choice.delta.extra_content = {"google": {**extra.get("google", {}), **state.extras}}
            closing.append(choice)
        out = [self._chunk(closing)]
        if self.rendering.include_usage:
            u = usage(self._usage) or o.Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
            out.append(self._chunk([]))
            out[-1].usage = u
        return out
