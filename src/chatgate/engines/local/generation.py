"""One candidate's token loop, on the model's generation thread.

Three ways to write an answer, chosen by ``prompt.Output``:

- free text: llama.cpp samples on its own; stop sequences are cut from the text;
- constrained: a grammar (``constrain.Constraint``) holds every token from the first one
  (structured output, tool choice ANY, AUTO with a structured answer);
- free text that may turn into calls (tool choice AUTO): the model writes freely until it
  writes ``<tool_call>``; generation then restarts from the text so far plus the opener,
  under the call grammar (the prompt's cached chunks are reused, so the restart reads the
  text written so far again), and the call is completed validly. With the model's
  ``tool_call_bias`` set (the default), ``decide.py`` first decides between a call (the
  opener, then the call grammar) and text; after function results, text.

Stop sequences apply to free text only: cutting grammar-constrained JSON at a stop string
would make it invalid.
"""

from __future__ import annotations

import codecs
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chatgate.engines.local import decide
from chatgate.engines.local import prompt as prompts
from chatgate.engines.local import tools as calls
from chatgate.engines.local.batching import Cancelled, Stream
from chatgate.engines.local.constrain import Constraint
from chatgate.engines.local.llama import Dry
from chatgate.engines.local.stops import StopFilter

log = logging.getLogger("chatgate.local")

# llama.cpp's own sampling defaults that OpenAI requests have no field for.
TOP_K = prompts.DEFAULT_TOP_K  # unless the request's topK says otherwise
MIN_P = 0.05

# Loop control is llama.cpp's DRY sampler, on by default under a grammar (config
# ``loop_control``): a small model writing JSON tends to repeat one array item or one string
# until the budget is gone, and the mask alone cannot stop it (the repeat is valid JSON).
# Under a grammar DRY has no sequence breakers, so a repeated run of JSON grows across quotes
# and colons and a whole repeated item costs far more than a repeated key. Free text keeps
# DRY's usual breakers: a run restarts at a new line, a colon, a quote.
# Under a grammar a run of up to this many tokens repeats freely: the scaffolding before a
# value (`}, {"name": "`) recurs in every valid answer; with 2, DRY pushed digits of a
# date-time on forever and turned a second call of one function into another function.
JSON_RUN = 4
TEXT_BREAKERS = ("\n", ":", '"', "*")


@dataclass(frozen=True, slots=True)
class Text:
    candidate: int
    text: str


@dataclass(frozen=True, slots=True)
class Call:
    candidate: int
    event: calls.CallEvent


@dataclass(frozen=True, slots=True)
class End:
    candidate: int
    reason: str  # Gemini finishReason
    tokens: int


Emit = Callable[[Any], None]

__all__ = ["Call", "Cancelled", "End", "Generation", "Text", "loop_control"]


class Generation:
    """Generates candidate ``candidate`` for ``tokens`` (the rendered prompt)."""

    def __init__(
        self,
        context: Stream,
        candidate: int,
        tokens: list[int],
        s: prompts.Sampling,
        out: prompts.Output,
        cancel: threading.Event,
        emit: Emit,
    ) -> None:
        self.context = context
        self.candidate = candidate
        self.prompt = tokens
        self.s = s
        self.out = out
        self.cancel = cancel
        self.emit = emit
        room = context.size - len(tokens)
        self.max_tokens = min(s.max_tokens or s.default_max_tokens or room, room)
        self.produced = 0

    def run(self) -> tuple[str, int]:
        """Generate; return (finish reason or "CANCELLED", tokens produced)."""
        try:
            if self.out.grammar is not None:
                reason = self._constrained(self.prompt, self.out.grammar, opened=False)
            elif self.out.open_grammar is not None and self.s.tool_call_bias is not None:
                reason = self._auto(self.s.tool_call_bias)
            else:
                reason = self._free()
        except Cancelled:
            return "CANCELLED", self.produced
        self.emit(End(self.candidate, reason, self.produced))
        return reason, self.produced

    def _tokens(
        self, tokens: list[int], constraint: Constraint | None = None, *, processor: decide.BanFirst | None = None
    ) -> Iterator[int]:
        s = self.s
        yield from self.context.generate(
            tokens,
            top_k=s.top_k,
            top_p=s.top_p,
            min_p=MIN_P,
            temperature=s.temperature,
            frequency_penalty=s.frequency_penalty,
            presence_penalty=s.presence_penalty,
            dry=loop_control(s, constrained=constraint is not None),
            logits_processor=constraint or processor,
        )

    # --- tool choice AUTO, decided -------------------------------------------------------

    def _auto(self, bias: float) -> str:
        opener = self.context.tokenize(calls.OPEN, add_bos=False, special=False)
        if self.out.after_results:
            return self._free(ban=opener[0])
        score = decide.opener_logprob(self.context, self.prompt, opener)
        if self.cancel.is_set():
            raise Cancelled
        call = score + bias > 0
        log.debug("tool choice AUTO: log P(opener) %.2f, bias %.2f: %s", score, bias, "call" if call else "text")
        if not call:
            return self._free()
        self.produced += len(opener)  # the answer's first tokens, as if the model had sampled them
        return self._call_after("")

    # --- free text ----------------------------------------------------------------------

    def _free(self, *, ban: int | None = None) -> str:
        """``ban``: a token the answer may not start with."""
        context = self.context
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        stops = StopFilter(list(self.s.stop))
        auto = self.out.open_grammar is not None
        opener = StopFilter([calls.OPEN])  # AUTO: the model starts a call
        before_call: list[str] = []  # all the text before a possible call
        # AUTO: leading whitespace is held until visible text comes; a call drops it.
        held, visible = "", not auto
        reason = "MAX_TOKENS"
        for token in self._tokens(self.prompt, processor=decide.BanFirst(ban) if ban is not None else None):
            if self.cancel.is_set():
                raise Cancelled
            if context.is_end(token):
                reason = "STOP"
                break
            self.produced += 1
            text = stops.push(decoder.decode(context.detokenize([token])))
            if auto:
                text = opener.push(text)
                before_call.append(text)
                if opener.stopped:
                    return self._call_after("".join(before_call))
                if not visible:
                    held += text
                    text, visible = (held, True) if held.strip() else ("", False)
            if text:
                self.emit(Text(self.candidate, text))
            if stops.stopped:
                reason = "STOP"
                break
            if self.produced >= self.max_tokens:
                break
        if not stops.stopped:
            tail = stops.push(decoder.decode(b"", final=True)) + stops.flush()
            if auto:
                tail = opener.push(tail) + opener.flush()
                if not visible:
                    tail = held + tail
            if tail:
                self.emit(Text(self.candidate, tail))
        return reason

    def _call_after(self, text: str) -> str:
        """The model wrote ``<tool_call>`` after ``text``: complete the call(s) under the grammar."""
        assert self.out.open_grammar is not None
        written = self.context.tokenize(text + calls.OPEN, add_bos=False, special=False)
        return self._constrained(self.prompt + written, self.out.open_grammar, opened=True)

    # --- under a grammar ------------------------------------------------------------------

    def _constrained(self, tokens: list[int], grammar: str, *, opened: bool) -> str:
        context = self.context
        constraint = Constraint(context.context, grammar)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        router = _Router(self, calls_only=opened, may_call=self.out.tools is not None and self.out.tools.may_call)
        if opened:
            router.feed(calls.OPEN)
        reason = "MAX_TOKENS"
        if self.produced >= self.max_tokens:
            return reason
        for token in self._tokens(tokens, constraint):
            if self.cancel.is_set():
                raise Cancelled
            if context.is_end(token):  # offered only where the grammar accepts
                reason = "STOP"
                break
            constraint.advance(token)
            self.produced += 1
            router.feed(decoder.decode(context.detokenize([token])))
            if constraint.finished:
                reason = "STOP"
                break
            if self.produced >= self.max_tokens:
                break
        router.feed(decoder.decode(b"", final=True))
        router.finish()
        return reason


def loop_control(s: prompts.Sampling, *, constrained: bool) -> Dry | None:
    """The DRY sampler for this request: one strength under a grammar (JSON, tool-call
    arguments), another for free text."""
    strength = s.loop_control if constrained else s.text_loop_control
    if strength <= 0:
        return None
    if constrained:
        return Dry(strength, allowed_length=JSON_RUN, breakers=())
    return Dry(strength, breakers=TEXT_BREAKERS)


class _Router:
    """Constrained output → events: JSON (or any non-call text) as text, calls as call events.
    A grammar allowing both starts calls with ``<`` and JSON answers with anything else."""

    def __init__(self, generation: Generation, *, calls_only: bool, may_call: bool) -> None:
        self.g = generation
        self.reader = calls.CallReader() if may_call else None
        self.kind: str | None = "calls" if calls_only else (None if may_call else "text")
        self.pending = ""

    def feed(self, text: str) -> None:
        if not text:
            return
        if self.kind is None:
            self.pending += text
            stripped = self.pending.lstrip()
            if not stripped:
                return
            self.kind = "calls" if stripped.startswith("<") else "text"
            text, self.pending = self.pending, ""
        if self.kind == "text":
            self.g.emit(Text(self.g.candidate, text))
            return
        assert self.reader is not None
        for event in self.reader.feed(text):
            self.g.emit(Call(self.g.candidate, event))

    def finish(self) -> None:
        if self.reader is not None:
            for event in self.reader.finish():
                self.g.emit(Call(self.g.candidate, event))
