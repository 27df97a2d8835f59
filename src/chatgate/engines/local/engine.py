"""The local engine: llama.cpp models on the CPU, behind the Engine contract.

Each model has one llama.cpp context holding ``parallel`` sequences, decoded together by its
batch scheduler (``batching.py``), and a bounded wait queue: a request that finds every
sequence busy waits its turn; one that finds the queue full gets a 429 with an estimate of
when to retry. Each running request has a worker thread (its prompt, its token loop); tokens
travel from it to the event loop one by one; closing the response iterator sets a flag the
worker checks before every token, so a client that goes away stops its generation within a
token or two.

Prompt prefixes can be pinned (``LocalEngine.pin``, for cachedContents): their KV state is kept
until unpinned, within ``local.cache_memory`` bytes, and a request whose prompt begins with one
starts from it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chatgate.config import Settings, state_dir
from chatgate.engines import capabilities
from chatgate.engines.admission import Admission
from chatgate.engines.local import constrain
from chatgate.engines.local import prompt as prompts
from chatgate.engines.local import schema as schemas
from chatgate.engines.local import tools as calls
from chatgate.engines.local.assemble import Parts
from chatgate.engines.local.batching import CHUNK, Scheduler, Stream
from chatgate.engines.local.generation import Call, End, Generation, Text
from chatgate.engines.local.llama import ChatFormat, Context
from chatgate.engines.local.models import LocalModelSpec, ModelUnavailable, specs
from chatgate.engines.local.probe import Probe, Verdict
from chatgate.errors import ContextLengthExceeded, InvalidRequest, NotFound, ResourceExhausted
from chatgate.protocols import gemini as g
from chatgate.protocols.tuning import NO_TUNING, Tuning

log = logging.getLogger("chatgate.local")


@dataclass(frozen=True, slots=True)
class Pinned:
    """A prompt prefix kept in a local model's cache (``LocalEngine.pin``)."""

    model: str  # the served local model name
    key: int  # opaque id of the pinned prefix, unique per engine
    tokens: int  # prompt tokens the prefix holds
    size: int  # bytes of KV state kept for it (counted against ``local.cache_memory``)


@dataclass(frozen=True, slots=True)
class _Done:
    prompt_tokens: int
    cached_tokens: int | None = None  # prompt tokens a pinned prefix supplied


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


Event = Text | Call | End | _Done | _Failed


@dataclass
class Counts:
    """What a model has generated since it loaded, every candidate counted once it ends
    (cancelled ones too, which no response's usage reports): for metrics and operators."""

    tokens: int = 0  # finished and cancelled candidates alike
    ended: dict[str, int] = field(default_factory=dict)  # by how they ended: "STOP", "MAX_TOKENS", "CANCELLED", ...
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, reason: str, tokens: int) -> None:
        with self._lock:  # candidates end on several generation threads
            self.tokens += tokens
            self.ended[reason] = self.ended.get(reason, 0) + 1


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalModel:
    """One loaded GGUF, its context (``parallel`` sequences, one batch scheduler), its wait
    queue and its pinned prefixes.

    ``parallel`` requests generate at once, each a sequence of the one context; every decode
    step carries the next token of all of them and uses every CPU thread. Beyond
    ``parallel``, requests wait in a queue of ``queue_size``; beyond that, 429.

    Before the context loads, ``probe`` decides whether llama.cpp may use its extra CPU buffer
    types on this machine (``probe.py``); every llama.cpp call goes through ``llama.Context``.
    """

    def __init__(self, spec: LocalModelSpec, probe: Probe | None = None) -> None:
        self.spec = spec
        self.threads = spec.threads or available_cores()
        self._probe = probe or Probe()
        # Whether llama.cpp's extra CPU buffer types are used, and why (probe.py); set by load().
        self.verdict: Verdict | None = None
        self.counts = Counts()
        self._context: Context | None = None
        self._scheduler: Scheduler | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._format: ChatFormat | None = None
        self._prefix_format: ChatFormat | None = None
        self.admission = Admission(f"model {spec.name!r}", spec.parallel, spec.queue_size, hold_estimate=2.0)
        self.active = 0  # requests (and pins being evaluated) holding a sequence
        self.pins: dict[int, Pinned] = {}
        self._bytes_per_token = 0  # KV state per token, learnt from the first pin
        # The chat template renders tools and calls itself (Hermes format), see tools.py.
        self.template_tools = False

    @property
    def context(self) -> Context:
        """The model's context: for metadata and tokenizing (any thread)."""
        assert self._context is not None, "model not loaded"
        return self._context

    @property
    def scheduler(self) -> Scheduler:
        assert self._scheduler is not None, "model not loaded"
        return self._scheduler

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        self.verdict = self._probe.verdict(self.spec.name, self.spec.path, self.spec.extra_buffers)
        started = time.perf_counter()
        self._context = Context(
            self.spec.path,
            context_size=self.spec.context_size,
            threads=self.threads,
            extra_buffers=self.verdict.extra_buffers,
            sequences=self.spec.parallel,
        )
        template = self.spec.chat_template or self.context.chat_template
        if not template:
            raise ModelUnavailable(
                f'model {self.spec.name}: the GGUF has no chat template; set models."{self.spec.name}".chat_template'
            )
        self.template_tools = "tools" in template and calls.OPEN in template
        self._format = self.context.chat_format(template)
        self._prefix_format = self.context.chat_format(template, generation_prompt=False)
        self._scheduler = Scheduler(self.context, self.spec.name)
        self._workers = ThreadPoolExecutor(
            max_workers=self.spec.parallel, thread_name_prefix=f"llama-{self.spec.name}-worker"
        )
        log.info(
            "loaded %s from %s in %.1f s (context %d tokens, %d parallel, %d threads, %s)",
            self.spec.name,
            self.spec.path,
            time.perf_counter() - started,
            self.spec.context_size,
            self.spec.parallel,
            self.threads,
            self.verdict,
        )

    def close(self) -> None:
        if self._context is None:
            return
        constrain.forget(self.context)
        assert self._scheduler is not None and self._workers is not None
        self._scheduler.close()
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._context.close()
        self._context = self._scheduler = self._workers = None

    # --- scheduling ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.active > 0

    @property
    def waiting(self) -> int:
        return self.admission.waiting

    @property
    def cache_used(self) -> int:
        """Bytes of KV state kept for pinned prefixes."""
        return sum(p.size for p in self.pins.values())

    async def _acquire(self) -> float:
        admitted = await self.admission.acquire()
        self.active += 1
        return admitted

    def _release(self, admitted: float) -> None:
        self.active -= 1
        self.admission.release(admitted)

    async def _on_worker(self, work: Callable[[Callable[[], None]], Any]) -> asyncio.Future[Any]:
        """Admission, then ``work(free)`` on a worker thread. The slot is given back once: when
        the work calls ``free`` (from its thread) or when it ends, whichever comes first."""
        assert self._workers is not None, "model not loaded"
        admitted = await self._acquire()
        loop = asyncio.get_running_loop()
        held = True

        def release() -> None:  # on the event loop
            nonlocal held
            if held:
                held = False
                self._release(admitted)

        def free() -> None:  # on the worker thread
            loop.call_soon_threadsafe(release)

        try:
            job = loop.run_in_executor(self._workers, work, free)
        except BaseException:
            release()
            raise
        job.add_done_callback(lambda _: release())  # done callbacks run on the loop
        return job

    async def generate(
        self,
        request: g.GenerateContentRequest,
        *,
        stream: bool,
        parallel_tool_calls: bool = True,
        tuning: Tuning = NO_TUNING,
    ) -> AsyncIterator[g.GenerateContentResponse]:
        # Schemas are compiled into grammars after admission, on the worker thread (at most
        # `parallel` at once, cancelled with the request); a request without any is checked here.
        out = (
            None
            if _compiles(request)
            else prompts.output(request, self.spec.name, parallel_tool_calls=parallel_tool_calls)
        )
        spec = self.spec
        sampling = prompts.sampling(
            request,
            default_max_tokens=spec.max_output_tokens,
            loop_control=spec.loop_control if tuning.loop_control is None else tuning.loop_control,
            text_loop_control=spec.text_loop_control if tuning.text_loop_control is None else tuning.text_loop_control,
            tool_call_bias=(
                None
                if spec.tool_decision == "free"
                else spec.tool_call_bias
                if tuning.tool_call_bias is None
                else tuning.tool_call_bias
            ),
        )
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        cancel = threading.Event()

        def emit(event: Event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        await self._on_worker(lambda free: self._run(request, out, parallel_tool_calls, sampling, cancel, emit, free))
        try:
            async for response in _responses(events, stream, sampling.n):
                yield response
        finally:
            cancel.set()

    # --- pinned prefixes --------------------------------------------------------------------

    async def pin(self, request: g.GenerateContentRequest) -> Pinned:
        """Evaluate the conversation ``request`` holds (no generation prompt) and keep its KV
        state; see ``LocalEngine.pin``."""
        limit = self.spec.cache_memory
        cancel = threading.Event()

        def work() -> tuple[int, int, int, int]:
            capabilities.check(request, prompts.CAPABILITIES, self.spec.name)
            out = prompts.Output(tools=calls.toolset(request))  # rendered, never compiled
            messages = prompts.messages(request, self.spec.name, out, template_tools=self.template_tools)
            tools = calls.template_tools(out.tools) if out.tools and self.template_tools else None
            assert self._prefix_format is not None
            tokens = self._prompt_tokens(self.context, messages, tools, None, formatter=self._prefix_format)
            if len(tokens) < CHUNK:
                raise InvalidRequest(
                    f"a cached prefix must hold at least {CHUNK} tokens on a local model; this one holds {len(tokens)}",
                    param="contents",
                )
            # KV bytes grow with tokens: refuse before the work when it cannot fit.
            estimate = self._bytes_per_token * (len(tokens) // CHUNK * CHUNK)
            if self.cache_used + estimate > limit:
                raise _exhausted(self.spec.name, self.cache_used, estimate, limit)
            return (*self.scheduler.pin(tokens, cancel), len(tokens))

        try:
            key, kept, size, tokens = await (await self._on_worker(lambda free: work()))
        finally:
            cancel.set()
        self._bytes_per_token = max(self._bytes_per_token, size // max(1, kept))
        if self.cache_used + size > limit:
            self.scheduler.unpin(key)
            raise _exhausted(self.spec.name, self.cache_used, size, limit)
        pinned = Pinned(model=self.spec.name, key=key, tokens=tokens, size=size)
        self.pins[key] = pinned
        return pinned

    def unpin(self, key: int) -> None:
        if self.pins.pop(key, None) is not None and self._scheduler is not None:
            self._scheduler.unpin(key)

    # --- the worker thread ------------------------------------------------------------------

    def _run(
        self,
        request: g.GenerateContentRequest,
        out: prompts.Output | None,
        parallel: bool,
        sampling: prompts.Sampling,
        cancel: threading.Event,
        emit: Callable[[Event], None],
        free: Callable[[], None],
    ) -> None:
        """Generate on this worker thread, emitting events for the event loop. The last event
        (done or failed) goes out after the sequence has left the scheduler and ``free`` gave
        the slot back: both callbacks run on the loop in the order they were scheduled, so a
        client that sends its next request as soon as this answer ends finds the slot free."""
        stream: Stream | None = None
        last: Event | None = None  # none when cancelled: the client has gone
        try:
            if out is None:
                out = _compile(request, self.spec.name, parallel, cancel)
            messages = prompts.messages(request, self.spec.name, out, template_tools=self.template_tools)
            tools = (
                calls.template_tools(out.tools) if out.tools and out.tools.may_call and self.template_tools else None
            )
            tokens = self._prompt_tokens(self.context, messages, tools, sampling.max_tokens)
            stream = self.scheduler.stream(cancel)
            for candidate in range(sampling.n):
                if cancel.is_set():
                    return
                seed = sampling.seed + candidate if sampling.seed is not None else random.getrandbits(32)
                stream.set_seed(seed)
                reason, produced = Generation(stream, candidate, tokens, sampling, out, cancel, emit).run()
                self.counts.add(reason, produced)
                if reason == "CANCELLED":
                    return
            last = _Done(prompt_tokens=len(tokens), cached_tokens=stream.pinned or None)
        except BaseException as exc:  # delivered to the event loop, raised there
            last = _Failed(exc)
        finally:
            if stream is not None:
                stream.end()
            if last is not None:
                free()
                emit(last)

    def count_tokens(self, request: g.GenerateContentRequest) -> int:
        """The tokens of the prompt ``request`` renders to, as ``generate`` would feed it
        (tools and a response schema included); blocking: call it off the event loop."""
        if not request.contents and not request.system_instruction:
            return 0
        out = prompts.output(request, self.spec.name)
        messages = prompts.messages(request, self.spec.name, out, template_tools=self.template_tools)
        tools = calls.template_tools(out.tools) if out.tools and out.tools.may_call and self.template_tools else None
        return len(self._render(self.context, messages, tools))

    def _render(
        self,
        context: Context,
        messages: list[prompts.Message],
        tools: list[dict[str, Any]] | None,
        formatter: ChatFormat | None = None,
    ) -> list[int]:
        formatter = formatter or self._format
        assert formatter is not None
        try:
            formatted = formatter(messages=messages, tools=tools)
        except Exception as exc:  # the template itself refused the conversation
            raise InvalidRequest(
                f"model {self.spec.name!r} cannot take this conversation: {exc}", param="messages"
            ) from None
        # Tokenizing reads the vocabulary only: any thread can, beside the scheduler's decodes.
        return context.tokenize(formatted.prompt, add_bos=not formatted.added_special, special=True)

    def _prompt_tokens(
        self,
        context: Context,
        messages: list[prompts.Message],
        tools: list[dict[str, Any]] | None,
        max_tokens: int | None,
        *,
        formatter: ChatFormat | None = None,
    ) -> list[int]:
        tokens = self._render(context, messages, tools, formatter)
        limit = context.size
        if len(tokens) >= limit:
            raise ContextLengthExceeded(
                f"this model's context window is {limit} tokens, but the messages take {len(tokens)} tokens; "
                "shorten them",
                param="messages",
            )
        if max_tokens is not None and len(tokens) + max_tokens > limit:
            # As vLLM answers: the room left is the client's to know, not to be cut silently.
            raise ContextLengthExceeded(
                f"this model's context window is {limit} tokens; the messages take {len(tokens)}, so "
                f"max_tokens may be at most {limit - len(tokens)}, not {max_tokens}",
                param="max_tokens",
            )
        return tokens


def _exhausted(model: str, used: int, wanted: int, limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"model {model!r} keeps {used} bytes of cached prefixes; {wanted} more would exceed "
        f"local.cache_memory ({limit} bytes): delete a cached content first"
    )


def _compiles(request: g.GenerateContentRequest) -> bool:
    """Whether ``prompts.output`` has schemas to compile (work worth queueing for)."""
    config = request.generation_config
    return bool(request.tools) or bool(config and config.response_mime_type not in (None, "", "text/plain"))


def _compile(request: g.GenerateContentRequest, model: str, parallel: bool, cancel: threading.Event) -> prompts.Output:
    """``prompts.output`` on a generation thread: unrolling a schema stops once ``cancel`` is set."""
    token = schemas.ABANDON.set(cancel)
    try:
        return prompts.output(request, model, parallel_tool_calls=parallel)
    finally:
        schemas.ABANDON.reset(token)


async def _responses(events: asyncio.Queue[Event], stream: bool, n: int) -> AsyncIterator[g.GenerateContentResponse]:
    """Events from the generation thread → Gemini response chunks.

    Streaming: one chunk per batch of events ready at once (a slow reader gets fewer,
    larger chunks). Not streaming: one response at the end."""
    parts = {i: Parts(stream=stream) for i in range(n)}
    reasons: dict[int, str] = {}
    completion_tokens = 0
    while True:
        batch = [await events.get()]
        while not events.empty():
            batch.append(events.get_nowait())
        touched: set[int] = set()
        ended: set[int] = set()
        done: _Done | None = None
        for event in batch:
            if isinstance(event, _Failed):
                raise event.error
            if isinstance(event, Text):
                parts[event.candidate].text(event.text)
                touched.add(event.candidate)
            elif isinstance(event, Call):
                parts[event.candidate].call(event.event)
                touched.add(event.candidate)
            elif isinstance(event, End):
                reasons[event.candidate] = event.reason
                ended.add(event.candidate)
                completion_tokens += event.tokens
            else:
                done = event
        if stream and (touched or ended):
            yield _response({i: parts[i].take() for i in sorted(touched | ended)}, {i: reasons[i] for i in ended})
        if done is not None:
            usage = g.UsageMetadata(
                prompt_token_count=done.prompt_tokens,
                candidates_token_count=completion_tokens,
                total_token_count=done.prompt_tokens + completion_tokens,
                cached_content_token_count=done.cached_tokens,
            )
            final = _response({} if stream else {i: p.take() for i, p in parts.items()}, {} if stream else reasons)
            final.usage_metadata = usage
            yield final
            return


def _response(parts: dict[int, list[g.Part]], reasons: dict[int, str]) -> g.GenerateContentResponse:
    return g.GenerateContentResponse(
        candidates=[
            g.Candidate(index=i, content=g.Content(role="model", parts=parts.get(i, [])), finish_reason=reasons.get(i))
            for i in sorted(set(parts) | set(reasons))
        ]
    )


class LocalEngine:
    """Every local model, by name and alias."""

    def __init__(self, model_specs: list[LocalModelSpec], *, probe: Probe | None = None) -> None:
        """``probe`` decides on llama.cpp's extra buffer types (default: probe, cache nothing)."""
        probe = probe or Probe()
        self._models = {spec.name: LocalModel(spec, probe) for spec in model_specs}
        self._names: dict[str, str] = {}
        for spec in model_specs:
            for name in (spec.name, *spec.aliases):
                self._names[name] = spec.name
                self._names[name.lower()] = spec.name

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEngine:
        return cls(specs(settings), probe=Probe(state_dir(settings)))

    def resolve(self, name: str) -> str | None:
        return self._names.get(name) or self._names.get(name.lower())

    def names(self) -> list[str]:
        return list(self._models)

    def model(self, name: str) -> LocalModel:
        return self._models[name]

    @property
    def busy(self) -> bool:
        return any(m.busy for m in self._models.values())

    async def start(self) -> None:
        """Load every model, off the event loop."""
        for model in self._models.values():
            await asyncio.to_thread(model.load)

    def generate(
        self,
        model: str,
        request: g.GenerateContentRequest,
        *,
        stream: bool,
        parallel_tool_calls: bool = True,
        tuning: Tuning = NO_TUNING,
    ) -> AsyncIterator[g.GenerateContentResponse]:
        """``parallel_tool_calls``: OpenAI's option, which Gemini has no field for. False
        holds the model to one call per answer. ``tuning``: the request's own loop control
        (``extra_body.chatgate``), else the model's configured one."""
        local = self._models.get(model)
        if local is None:
            raise NotFound(f"no local model named {model!r}", param="model", code="model_not_found")
        return local.generate(request, stream=stream, parallel_tool_calls=parallel_tool_calls, tuning=tuning)

    async def count_tokens(self, model: str, request: g.GenerateContentRequest) -> int:
        """The prompt tokens of ``request`` on ``model`` (``countTokens``), off the event loop."""
        local = self._models.get(model)
        if local is None:
            raise NotFound(f"no local model named {model!r}", param="model", code="model_not_found")
        return await asyncio.to_thread(local.count_tokens, request)

    async def pin(self, model: str, request: g.GenerateContentRequest) -> Pinned:
        """Keep the KV state of ``request``'s conversation (systemInstruction, contents, tools,
        rendered without the generation prompt; ``generationConfig`` ignored) until ``unpin``:
        a later ``generate`` whose prompt begins with it starts from it and reports the tokens
        it took as ``usage_metadata.cached_content_token_count``. ``NotFound`` for an unknown
        model, ``InvalidRequest`` when it does not fit the context window, ``ResourceExhausted``
        (429) when keeping it would exceed ``local.cache_memory``."""
        local = self._models.get(model)
        if local is None:
            raise NotFound(f"no local model named {model!r}", param="model", code="model_not_found")
        return await local.pin(request)

    def unpin(self, pinned: Pinned) -> None:
        """Forget a pinned prefix (idempotent)."""
        local = self._models.get(pinned.model)
        if local is not None:
            local.unpin(pinned.key)

    async def aclose(self) -> None:
        for model in self._models.values():
            await asyncio.to_thread(model.close)
