"""``FakeEngine``: a model server whose every generation plays a script of events.

It follows the engine protocols the front takes (``engines.base.ModelServer``), so
``build_app(settings, local=FakeEngine(...))`` serves it in place of llama.cpp. Each event
of the script is one chunk, in the engine contract's shape (``engines/base.py``):

- ``Text(text)``, ``Call(name, args)``: a part of a candidate (``choice``);
- ``Finish(reason)``: that candidate's ``finishReason``;
- ``Usage(prompt, completion, cached)``: ``usageMetadata`` (``cached``: cachedContentTokenCount);
- ``Fail(error)``: raise it (first in the script: before the first chunk, else after it);
- ``Hang()``: wait until the iterator is closed (disconnect tests).

Every call is recorded (``calls``): what was asked, and whether the iterator was closed
before the script ended, which is how an engine is told to stop. ``pin``/``unpin`` (context
caches) keep what was pinned in ``pins``: each pin holds ``pin_tokens`` tokens of
``PIN_BYTES`` each, and fails with ``pin_error`` when that is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatgate.engines.local.engine import Pinned
from chatgate.protocols import gemini as g
from chatgate.protocols.tuning import NO_TUNING, Tuning

MODEL = "fake/model-a"
PIN_BYTES = 1000  # bytes a pinned token takes
OTHER = "fake/model-b"


@dataclass(frozen=True)
class Text:
    text: str
    choice: int = 0


@dataclass(frozen=True)
class Call:
    name: str
    args: dict[str, Any]
    choice: int = 0


@dataclass(frozen=True)
class Finish:
    reason: str = "STOP"
    choice: int = 0


@dataclass(frozen=True)
class Usage:
    prompt: int
    completion: int
    cached: int | None = None


@dataclass(frozen=True)
class Fail:
    error: Exception  # a ChatgateError, or a bug


@dataclass(frozen=True)
class Hang:
    pass


Event = Text | Call | Finish | Usage | Fail | Hang

HELLO: list[Event] = [Text("Hello"), Text(" there."), Finish(), Usage(5, 2)]


@dataclass
class Seen:
    """One ``generate`` call as the engine saw it."""

    model: str
    request: g.GenerateContentRequest
    stream: bool
    parallel_tool_calls: bool
    tuning: Tuning = NO_TUNING
    closed: bool = False  # the iterator was closed (or cancelled) before the script ended
    hanging: asyncio.Event = field(default_factory=asyncio.Event)


def _chunk(event: Event) -> g.GenerateContentResponse:
    match event:
        case Text(text, choice):
            part = g.Part(text=text)
        case Call(name, args, choice):
            part = g.Part(function_call=g.FunctionCall(name=name, args=args))
        case Finish(reason, choice):
            return g.GenerateContentResponse(candidates=[g.Candidate(index=choice, finish_reason=reason)])
        case Usage(prompt, completion, cached):
            return g.GenerateContentResponse(
                usage_metadata=g.UsageMetadata(
                    prompt_token_count=prompt,
                    candidates_token_count=completion,
                    total_token_count=prompt + completion,
                    cached_content_token_count=cached,
                )
            )
        case _:
            raise AssertionError(event)
    return g.GenerateContentResponse(
        candidates=[g.Candidate(index=choice, content=g.Content(role="model", parts=[part]))]
    )


class FakeEngine:
    def __init__(self, script: Sequence[Event] = HELLO, models: Sequence[str] = (MODEL, OTHER)) -> None:
        self.script = list(script)
        self._models = list(models)
        self.calls: list[Seen] = []
        self.counted: list[tuple[str, g.GenerateContentRequest]] = []
        self.waiting = 0  # the Load of every model: read by /metrics
        self.busy = False
        self.pins: dict[int, tuple[Pinned, g.GenerateContentRequest]] = {}
        self.pin_tokens = 42
        self.pin_error: Exception | None = None
        self._pin_keys = 0

    # --- Catalogue ---

    def resolve(self, name: str) -> str | None:
        return next((m for m in self._models if m.lower() == name.lower()), None)

    def names(self) -> list[str]:
        return list(self._models)

    def model(self, name: str) -> FakeEngine:
        return self

    # --- Engine ---

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def generate(
        self,
        model: str,
        request: g.GenerateContentRequest,
        *,
        stream: bool,
        parallel_tool_calls: bool = True,
        tuning: Tuning = NO_TUNING,
    ) -> AsyncIterator[g.GenerateContentResponse]:
        seen = Seen(model, request, stream, parallel_tool_calls, tuning)
        self.calls.append(seen)
        self.busy = True
        try:
            for event in self.script:
                if isinstance(event, Fail):
                    raise event.error
                if isinstance(event, Hang):
                    seen.hanging.set()
                    await asyncio.Event().wait()
                yield _chunk(event)
        except (GeneratorExit, asyncio.CancelledError):
            seen.closed = True
            raise
        finally:
            self.busy = False

    async def pin(self, model: str, request: g.GenerateContentRequest) -> Pinned:
        if self.pin_error is not None:
            raise self.pin_error
        self._pin_keys += 1
        pinned = Pinned(model=model, key=self._pin_keys, tokens=self.pin_tokens, size=self.pin_tokens * PIN_BYTES)
        self.pins[pinned.key] = (pinned, request)
        return pinned

    def unpin(self, pinned: Pinned) -> None:
        self.pins.pop(pinned.key, None)

    async def count_tokens(self, model: str, request: g.GenerateContentRequest) -> int:
        """A word count of the prompt's text: enough to tell requests apart."""
        self.counted.append((model, request))
        contents = [*request.contents, *([request.system_instruction] if request.system_instruction else [])]
        return sum(len((part.text or "").split()) for content in contents for part in content.parts)

    @property
    def last(self) -> Seen:
        return self.calls[-1]
