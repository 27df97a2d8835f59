"""The boundary between the front and whatever runs a model.

An engine takes the canonical request (Gemini's ``GenerateContentRequest``) and yields
Gemini ``GenerateContentResponse`` chunks. That is the whole contract:

- ``generate(model, request, stream=...)`` is an async iterator. With ``stream=True`` each
  chunk carries *new* parts per candidate (text deltas, whole function calls) the way
  ``streamGenerateContent`` does; with ``stream=False`` the engine may yield one complete
  response. Either way the last chunk carries ``finishReason`` on every candidate and
  ``usageMetadata`` for the whole request.
- Before yielding anything it validates what it cannot do and raises
  ``chatgate.errors.Unsupported`` (image input to a text-only model, native Google tools on a
  local model ...) or another ``ClientError``. Failures after the first chunk are raised as
  ``ChatgateError`` subclasses too; the front turns them into a final stream error event.
- Closing the iterator early (``aclose()``, or the task being cancelled because the client
  went away) stops the work it started: local generation within a few tokens, an upstream
  HTTP request at once.
- It never blocks the event loop: model work runs on threads, network I/O is async.
- It raises only ``chatgate.errors`` types; vendor exceptions are mapped at the boundary.
- ``parallel_tool_calls=False`` (OpenAI's option, which Gemini's request has no field for)
  holds the model to at most one function call per answer where the engine can enforce it;
  Gemini cannot, and ignores it.
- ``tuning`` carries chatgate's own per-request knobs (``extra_body.chatgate``: loop control),
  which only the local engine has a use for; others ignore it.

What the front needs beyond generation is a catalogue (``Catalogue``: the names it serves,
and resolving a client's name to one of them) and, per model, its load (``Load``: requests
waiting, one generating), which ``/metrics`` shows. ``ModelServer`` is the three together,
with a start-up and ``count_tokens`` (the prompt's tokens, for ``countTokens``): the local
engine follows it, and so can any fake a test or benchmark passes to ``build_app``.

Self-deployed endpoints relay OpenAI bodies untranslated and so sit beside this protocol
(``engines/upstream/``), not behind it.

Example::

    async for chunk in engine.generate("gemini-2.5-flash", request, stream=True):
        for candidate in chunk.candidates or []:
            ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from chatgate.protocols.gemini import GenerateContentRequest, GenerateContentResponse
from chatgate.protocols.tuning import NO_TUNING, Tuning


class Engine(Protocol):
    def generate(
        self,
        model: str,
        request: GenerateContentRequest,
        *,
        stream: bool,
        parallel_tool_calls: bool = True,
        tuning: Tuning = NO_TUNING,
    ) -> AsyncIterator[GenerateContentResponse]: ...

    async def aclose(self) -> None: ...


class Load(Protocol):
    """How loaded one served model is, read when ``/metrics`` is scraped."""

    @property
    def waiting(self) -> int: ...  # requests queued for it

    @property
    def busy(self) -> bool: ...  # at least one generation running


class Catalogue(Protocol):
    """The models an engine serves, by the names it knows them by."""

    def resolve(self, name: str) -> str | None: ...  # a client's name (or alias) → the served name

    def names(self) -> list[str]: ...

    def model(self, name: str) -> Load: ...  # for a name from ``names()``


class ModelServer(Engine, Catalogue, Protocol):
    """An engine with its own catalogue of models, loaded at start-up (the local engine)."""

    async def start(self) -> None: ...

    async def count_tokens(self, model: str, request: GenerateContentRequest) -> int: ...  # the prompt's tokens
