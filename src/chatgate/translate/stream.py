"""Gemini stream chunks → OpenAI ``chat.completion.chunk`` objects.

One ``StreamTranslator`` per response holds the per-choice state OpenAI clients rely on:
the role goes on each choice's first delta only, ``finish_reason`` is sent exactly once per
choice, usage is kept from the last chunk that had it (Gemini repeats it) and sent as its
own final chunk with ``choices: []`` when the client asked for ``include_usage``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate.request import Rendering
from chatgate.translate.response import finish_reason, new_id, usage


@dataclass(slots=True)
class _ChoiceState:
    started: bool = False
    finished: bool = False


class StreamTranslator:
    def __init__(self, rendering: Rendering, *, completion_id: str | None = None, created: int | None = None):
        self.rendering = rendering
        self.id = completion_id or new_id()
        self.created = created or int(time.time())
        self._choices: dict[int, _ChoiceState] = {}
        self._usage: g.UsageMetadata | None = None
        self._blocked = False

    def _chunk(self, choices: list[o.ChunkChoice]) -> o.ChatCompletionChunk:
        chunk = o.ChatCompletionChunk(id=self.id, created=self.created, model=self.rendering.model, choices=choices)
        if self.rendering.include_usage:
            chunk.usage = None
        return chunk

    def _state(self, index: int) -> _ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
        return state

    def feed(self, response: g.GenerateContentResponse) -> list[o.ChatCompletionChunk]:
        if response.usage_metadata is not None:
            self._usage = response.usage_metadata
        if response.prompt_feedback and response.prompt_feedback.block_reason:
            self._blocked = True
        out: list[o.ChunkChoice] = []
        for position, candidate in enumerate(response.candidates or []):
            index = candidate.index if candidate.index is not None else position
            state = self._state(index)
            if state.finished:
                continue
            text = "".join(
                p.text for p in (candidate.content.parts if candidate.content else []) if p.text is not None
            )
            delta = o.Delta()
            if not state.started:
                delta.role = "assistant"
                delta.content = text
                state.started = True
            elif text:
                delta.content = text
            reason = None
            if candidate.finish_reason:
                reason = finish_reason(candidate.finish_reason)
                state.finished = True
            if delta != o.Delta() or reason is not None:
                out.append(o.ChunkChoice(index=index, delta=delta, finish_reason=reason))
        return [self._chunk(out)] if out else []

    def finish(self) -> list[o.ChatCompletionChunk]:
        """Close every open choice and append the usage chunk if one was asked for."""
        closing: list[o.ChunkChoice] = []
        if not self._choices:
            # A blocked prompt yields no candidate at all: still one filtered choice (B14).
            reason: o.FinishReason = "content_filter" if self._blocked else "stop"
            closing.append(o.ChunkChoice(index=0, delta=o.Delta(role="assistant", content=None), finish_reason=reason))
        for index, state in sorted(self._choices.items()):
            if not state.finished:
                state.finished = True
                closing.append(o.ChunkChoice(index=index, delta=o.Delta(), finish_reason="stop"))
        out = [self._chunk(closing)] if closing else []
        if self.rendering.include_usage:
            u = usage(self._usage) or o.Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
            out.append(self._chunk([]))
            out[-1].usage = u
        return out
