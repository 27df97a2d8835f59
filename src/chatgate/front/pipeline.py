"""One request through an engine: the part every chat route shares.

A route decodes its body into Gemini's canonical request and resolves its target; from
there the path is the same for every route and every engine (anything that follows
``engines.base.Engine``):

- ``complete`` runs the engine to the end and folds its chunks into one response;
- ``Stream.open`` waits for the engine's first chunk before the route sends a header, so an
  error before any output (queue full, prompt too long) keeps its HTTP status;
  ``Stream.events`` then renders that chunk and every later one as the SSE body.

Both record the usage under the target's configured name, and close the engine's iterator
when the work ends, fails, runs past the run's ``deadline`` (``front/deadline.py``: a 504, or
a 503 when the server stops; for a started stream, its final error event) or the client
goes away (``ClientGone``): closing it is what stops the engine. ``receive`` is the ASGI
receive of a request whose body has been read; without one (engine-level tests) nothing
watches for a disconnect.

How the answer is shaped is the route's: the OpenAI routes translate with
``chat_completion`` and ``Stream.events`` with a ``StreamTranslator``; a native Gemini route
passes its own translator (the responses as they are) and error framing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from starlette.types import Receive

from chatgate.engines.base import Engine
from chatgate.front import sse
from chatgate.front.deadline import Deadline
from chatgate.front.disconnect import unless_disconnected
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.protocols.tuning import NO_TUNING, Tuning
from chatgate.translate.request import Rendering, to_gemini
from chatgate.translate.response import fold, to_chat_completion

T = TypeVar("T")
# Where usage goes: (the configured model's name, the usage the engine reported).
RecordUsage = Callable[[str, "g.UsageMetadata | None"], None]


def _ignore_usage(label: str, usage: g.UsageMetadata | None) -> None:
    pass


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, per request
class Run:
    """What to run: a canonical request, on an engine, under the name the engine knows."""

    engine: Engine
    model: str  # the engine's name for the model
    label: str  # the resolved, configured model: what metrics name it (never the client's string)
    request: g.GenerateContentRequest
    stream: bool
    parallel_tool_calls: bool = True
    deadline: Deadline | None = None  # when the whole run must end
    tuning: Tuning = NO_TUNING  # extra_body.chatgate

    def start(self) -> AsyncIterator[g.GenerateContentResponse]:
        return self.engine.generate(
            self.model,
            self.request,
            stream=self.stream,
            parallel_tool_calls=self.parallel_tool_calls,
            tuning=self.tuning,
        )


def openai_run(
    engine: Engine, model: str, label: str, chat: o.ChatCompletionRequest, echo: str, deadline: Deadline | None = None
) -> tuple[Run, Rendering]:
    """An OpenAI request translated into a run, and how to render its answer (``echo`` is
    the model name the answer carries)."""
    request, rendering = to_gemini(chat, echo)
    return Run(
        engine,
        model,
        label,
        request,
        rendering.stream,
        parallel_tool_calls=rendering.parallel_tool_calls,
        deadline=deadline,
        tuning=rendering.tuning,
    ), rendering


async def within(deadline: Deadline | None, work: Awaitable[T]) -> T:
    return await work if deadline is None else await deadline.run(work)


async def _watched(receive: Receive | None, work: Awaitable[T]) -> T:
    return await work if receive is None else await unless_disconnected(receive, work)


async def _close(chunks: AsyncIterator[g.GenerateContentResponse]) -> None:
    await chunks.aclose()  # type: ignore[attr-defined]  # engines return async generators


async def _collect(chunks: AsyncIterator[g.GenerateContentResponse]) -> list[g.GenerateContentResponse]:
    try:
        return [chunk async for chunk in chunks]
    finally:
        await _close(chunks)


async def complete(
    run: Run, *, record: RecordUsage = _ignore_usage, receive: Receive | None = None
) -> g.GenerateContentResponse:
    """The whole answer, folded into one response. Raises ``ClientGone`` if the client left."""
    response = fold(await within(run.deadline, _watched(receive, _collect(run.start()))))
    record(run.label, response.usage_metadata)
    return response


class Translator(Protocol):
    """How a route shapes a stream: the events for each engine response, and the closing ones
    (``translate.stream.StreamTranslator`` for OpenAI chunks)."""

    def feed(self, response: g.GenerateContentResponse) -> Sequence[object]: ...

    def finish(self) -> Sequence[object]: ...


class Stream:
    """An engine's stream whose first chunk has arrived (``None``: it ended at once).

    ``events()`` renders it; ``aclose()`` (which ``events()`` calls when it ends, and whoever does not
    render it must call) stops the engine and records the usage."""

    def __init__(
        self,
        run: Run,
        chunks: AsyncIterator[g.GenerateContentResponse],
        first: g.GenerateContentResponse | None,
        record: RecordUsage,
    ) -> None:
        self._run = run
        self._chunks = chunks
        self._first = first
        self._record = record
        self._usage = first.usage_metadata if first is not None else None
        self._closed = False

    @classmethod
    async def open(cls, run: Run, *, record: RecordUsage = _ignore_usage, receive: Receive | None = None) -> Stream:
        """Start the run and wait for its first chunk; an error before it is raised here."""
        chunks = run.start()
        try:
            first = await within(run.deadline, _watched(receive, anext(chunks, None)))
        except BaseException:
            await _close(chunks)
            raise
        return cls(run, chunks, first, record)

    async def events(
        self,
        translator: Translator,
        *,
        failed: Callable[[Exception], bytes],
        done: bytes | None = None,
        frame: Callable[[object], bytes] = sse.encode_event,
    ) -> AsyncIterator[bytes]:
        """The answer's body: each translated event framed (an SSE frame unless ``frame``
        says otherwise), then ``done``. A failure after the first chunk (the headers have gone
        out) ends it with the frame ``failed`` makes of it. One generator from the engine to
        the socket: this is the hot path."""
        try:
            if self._first is not None:
                for event in translator.feed(self._first):
                    yield frame(event)
                while (response := await within(self._run.deadline, anext(self._chunks, None))) is not None:
                    if response.usage_metadata is not None:
                        self._usage = response.usage_metadata
                    for event in translator.feed(response):
                        yield frame(event)
            for event in translator.finish():
                yield frame(event)
            if done is not None:
                yield done
        except Exception as exc:
            yield failed(exc)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the engine (if it still runs) and record the usage seen; once."""
        if self._closed:
            return
        self._closed = True
        try:
            await _close(self._chunks)
        finally:
            self._record(self._run.label, self._usage)


async def chat_completion(
    run: Run, rendering: Rendering, *, record: RecordUsage = _ignore_usage, receive: Receive | None = None
) -> o.ChatCompletion:
    """A non-streaming OpenAI answer (Gemini's responseId as its id when it has one)."""
    return to_chat_completion(await complete(run, record=record, receive=receive), rendering)
