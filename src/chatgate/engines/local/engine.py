"""The local engine: llama.cpp models on the CPU, behind the Engine contract.

Each model has ``parallel`` contexts, each with its own generation thread (llama.cpp contexts
are not thread-safe), and a bounded wait queue: a request that finds every context busy
waits its turn; one that finds the queue full gets a 429 with an estimate of when to retry.
Tokens travel from the generation thread to the event loop one by one; closing the response
iterator sets a flag the thread checks before every token, so a client that goes away stops
its generation within a token or two.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec

from chatgate.config import Settings, byte_size, state_dir
from chatgate.engines.admission import Admission
from chatgate.engines.local import constrain
from chatgate.engines.local import prompt as prompts
from chatgate.engines.local import schema as schemas
from chatgate.engines.local import tools as calls
from chatgate.engines.local.assemble import Parts
from chatgate.engines.local.generation import Call, End, Generation, Text
from chatgate.engines.local.llama import ChatFormat, Context
from chatgate.engines.local.models import LocalModelSpec, ModelUnavailable, specs
from chatgate.engines.local.probe import Probe, Verdict
from chatgate.errors import ContextLengthExceeded, InvalidRequest, NotFound, ResourceExhausted
from chatgate.protocols import gemini as g
from chatgate.protocols.tuning import NO_TUNING, Tuning

log = logging.getLogger("chatgate.local")


# Tokens at the end of a pinned prefix that a request's prompt may render differently (the
# cached last turn merged with the request's first, say) and still count as using the pin.
PIN_BOUNDARY = 8


@dataclass(frozen=True, slots=True)
class Pinned:
    """A prompt prefix kept for a context cache (cachedContents): see ``LocalEngine.pin``."""

    model: str  # the served local model name
    key: int  # opaque id of the pinned prefix, unique per engine
    tokens: int  # prompt tokens the prefix holds (CachedContent.usageMetadata.totalTokenCount)
    size: int  # bytes of KV state kept for it (counted against `local.cache_memory`)


@dataclass(frozen=True, slots=True)
class _Done:
    prompt_tokens: int
    cached_tokens: int | None = None  # of those, taken from a pinned prefix


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


Event = Text | Call | End | _Done | _Failed


class _Slot:
    """One llama.cpp context of a model and the thread that runs it (contexts are not
    thread-safe; the weights are memory-mapped once and shared by every context)."""

    def __init__(self, context: Context, name: str, index: int) -> None:
        self.context = context
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{name}-{index}")
        self.busy = False

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.context.close()


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
    """One loaded GGUF, its contexts (slots), and its wait queue.

    ``parallel`` requests generate at once, each in its own context on its own thread;
    the CPU threads are shared out among the running generations before every token (one
    generation gets them all), so a lone stream runs at full speed and concurrent streams
    raise the aggregate tokens/s. Beyond ``parallel``, requests wait in a queue of
    ``queue_size``; beyond that, 429.

    Before the contexts load, ``probe`` decides whether llama.cpp may use its extra CPU buffer
    types on this machine (``probe.py``); every llama.cpp call goes through ``llama.Context``.
    """

    def __init__(self, spec: LocalModelSpec, probe: Probe | None = None) -> None:
        self.spec = spec
        self.slots: list[_Slot] = []
        self.threads = spec.threads or available_cores()
        self._probe = probe or Probe()
        # Whether llama.cpp's extra CPU buffer types are used, and why (probe.py); set by load().
        self.verdict: Verdict | None = None
        self.counts = Counts()
        self._format: ChatFormat | None = None
        self._prefix_format: ChatFormat | None = None  # without the generation prompt (pins)
        # STAND-IN (replaced by the batching branch's real pins): the token prefixes pinned for
        # context caches, by key. Read on generation threads, written on the event loop.
        self.pins: dict[int, tuple[int, ...]] = {}
        self.admission = Admission(f"model {spec.name!r}", spec.parallel, spec.queue_size, hold_estimate=2.0)
        # The chat template renders tools and calls itself (Hermes format), see tools.py.
        self.template_tools = False

    @property
    def context(self) -> Context:
        """The first context: for what any context can answer (metadata, tokenizing)."""
        return self.slots[0].context

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        self.verdict = self._probe.verdict(self.spec.name, self.spec.path, self.spec.extra_buffers)
        started = time.perf_counter()
        for index in range(self.spec.parallel):
            context = Context(
                self.spec.path,
                context_size=self.spec.context_size,
                threads=self.threads,
                extra_buffers=self.verdict.extra_buffers,
            )
            self.slots.append(_Slot(context, self.spec.name, index))
        template = self.spec.chat_template or self.context.chat_template
        if not template:
            raise ModelUnavailable(
                f'model {self.spec.name}: the GGUF has no chat template; set models."{self.spec.name}".chat_template'
            )
        self.template_tools = "tools" in template and calls.OPEN in template
        self._format = self.context.chat_format(template)
        self._prefix_format = self.context.chat_format(template, generation_prompt=False)
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
        if self.slots:
            constrain.forget(self.context)
        for slot in self.slots:
            slot.close()
        self.slots = []

    # --- scheduling ---------------------------------------------------------------------

    @property
    def active(self) -> int:
        return sum(slot.busy for slot in self.slots)

    @property
    def busy(self) -> bool:
        return self.active > 0

    @property
    def waiting(self) -> int:
        return self.admission.waiting

    def _threads_each(self) -> int:
        """CPU threads for one generation now: shared out among those running."""
        return max(1, self.threads // max(1, self.active))

    async def _acquire(self) -> tuple[_Slot, float]:
        admitted = await self.admission.acquire()
        slot = next(slot for slot in self.slots if not slot.busy)
        slot.busy = True
        return slot, admitted

    def _release(self, slot: _Slot, admitted: float) -> None:
        slot.busy = False
        self.admission.release(admitted)

    async def generate(
        self,
        request: g.GenerateContentRequest,
        *,
        stream: bool,
        parallel_tool_calls: bool = True,
        tuning: Tuning = NO_TUNING,
    ) -> AsyncIterator[g.GenerateContentResponse]:
        # Schemas are compiled into grammars after admission, on the slot's thread (at most
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
        slot, admitted = await self._acquire()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        cancel = threading.Event()

        def emit(event: Event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def release(_: object) -> None:
            loop.call_soon_threadsafe(self._release, slot, admitted)

        try:
            job = loop.run_in_executor(
                slot.executor, self._run, slot.context, request, out, parallel_tool_calls, sampling, cancel, emit
            )
        except BaseException:
            self._release(slot, admitted)
            raise
        job.add_done_callback(release)
        try:
            async for response in _responses(events, stream, sampling.n):
                yield response
        finally:
            cancel.set()

    # --- the generation thread ------------------------------------------------------------

    def _run(
        self,
        context: Context,
        request: g.GenerateContentRequest,
        out: prompts.Output | None,
        parallel: bool,
        sampling: prompts.Sampling,
        cancel: threading.Event,
        emit: Callable[[Event], None],
    ) -> None:
        try:
            if out is None:
                out = _compile(request, self.spec.name, parallel, cancel)
            messages = prompts.messages(request, self.spec.name, out, template_tools=self.template_tools)
            tools = (
                calls.template_tools(out.tools) if out.tools and out.tools.may_call and self.template_tools else None
            )
            tokens = self._prompt_tokens(context, messages, tools, sampling.max_tokens)
            cached = self._from_pin(tokens)
            for candidate in range(sampling.n):
                if cancel.is_set():
                    return
                seed = sampling.seed + candidate if sampling.seed is not None else random.getrandbits(32)
                context.set_seed(seed)
                reason, produced = Generation(
                    context, candidate, tokens, sampling, out, cancel, emit, threads=self._threads_each
                ).run()
                self.counts.add(reason, produced)
                if reason == "CANCELLED":
                    return
            emit(_Done(prompt_tokens=len(tokens), cached_tokens=cached))
        except BaseException as exc:  # delivered to the event loop, raised there
            emit(_Failed(exc))

    # --- pinned prefixes (STAND-IN: the batching branch keeps their KV state) -------------------

    async def prefix_tokens(self, request: g.GenerateContentRequest) -> list[int]:
        """``request`` rendered without the generation prompt and tokenized, after admission,
        on a context's thread."""
        slot, admitted = await self._acquire()
        try:
            return await asyncio.get_running_loop().run_in_executor(slot.executor, self._prefix, slot.context, request)
        finally:
            self._release(slot, admitted)

    def _prefix(self, context: Context, request: g.GenerateContentRequest) -> list[int]:
        assert self._prefix_format is not None
        request = msgspec.structs.replace(request, generation_config=None)
        out = _compile(request, self.spec.name, True, threading.Event())
        messages = prompts.messages(request, self.spec.name, out, template_tools=self.template_tools)
        tools = calls.template_tools(out.tools) if out.tools and out.tools.may_call and self.template_tools else None
        try:
            formatted = self._prefix_format(messages=messages, tools=tools)
        except Exception as exc:
            raise InvalidRequest(
                f"model {self.spec.name!r} cannot take these contents: {exc}", param="contents"
            ) from None
        tokens = context.tokenize(formatted.prompt, add_bos=not formatted.added_special, special=True)
        if len(tokens) >= context.size:
            raise ContextLengthExceeded(
                f"this model's context window is {context.size} tokens, but the cached contents take "
                f"{len(tokens)} tokens",
                param="contents",
            )
        return tokens

    def _from_pin(self, tokens: list[int]) -> int | None:
        """Prompt tokens a pinned prefix covers (the longest common prefix with a pin, when it
        reaches that pin's end but for ``PIN_BOUNDARY`` tokens)."""
        best = 0
        for pinned in list(self.pins.values()):
            common = 0
            for mine, theirs in zip(tokens, pinned, strict=False):
                if mine != theirs:
                    break
                common += 1
            if common >= len(pinned) - PIN_BOUNDARY and common > best:
                best = common
        return best or None

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
        self, context: Context, messages: list[prompts.Message], tools: list[dict[str, Any]] | None
    ) -> list[int]:
        assert self._format is not None
        try:
            formatted = self._format(messages=messages, tools=tools)
        except Exception as exc:  # the template itself refused the conversation
            raise InvalidRequest(
                f"model {self.spec.name!r} cannot take this conversation: {exc}", param="messages"
            ) from None
        # Tokenizing reads the vocabulary only: any context can, beside a generation.
        return context.tokenize(formatted.prompt, add_bos=not formatted.added_special, special=True)

    def _prompt_tokens(
        self,
        context: Context,
        messages: list[prompts.Message],
        tools: list[dict[str, Any]] | None,
        max_tokens: int | None,
    ) -> list[int]:
        tokens = self._render(context, messages, tools)
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

    def __init__(
        self, model_specs: list[LocalModelSpec], *, probe: Probe | None = None, cache_memory: int = 256 * 1024 * 1024
    ) -> None:
        """``probe`` decides on llama.cpp's extra buffer types (default: probe, cache nothing);
        ``cache_memory``: bytes pinned prefixes may keep, every model together."""
        probe = probe or Probe()
        self._cache_memory = cache_memory
        self._pinned: dict[int, Pinned] = {}
        self._pin_keys = itertools.count(1)
        self._models = {spec.name: LocalModel(spec, probe) for spec in model_specs}
        self._names: dict[str, str] = {}
        for spec in model_specs:
            for name in (spec.name, *spec.aliases):
                self._names[name] = spec.name
                self._names[name.lower()] = spec.name

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEngine:
        memory = byte_size(settings.local.cache_memory, "local.cache_memory")
        return cls(specs(settings), probe=Probe(state_dir(settings)), cache_memory=memory)

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

    # --- pinned prefixes for context caches ------------------------------------------------
    # STAND-IN, replaced by the batching branch: the prefix is tokenized and counted, no KV
    # state is kept, and ``generate`` reports the prompt tokens a pin covers as cached.

    @property
    def pinned_bytes(self) -> int:
        return sum(p.size for p in self._pinned.values())

    async def pin(self, model: str, request: g.GenerateContentRequest) -> Pinned:
        """Keep ``request``'s rendered prompt (systemInstruction, contents, tools) for later
        requests that start with it. 404 unknown model, 400 too long, 429 no memory left."""
        local = self._models.get(model)
        if local is None:
            raise NotFound(f"no local model named {model!r}", param="model", code="model_not_found")
        tokens = await local.prefix_tokens(request)
        size = len(tokens) * local.context.kv_bytes_per_token
        if self.pinned_bytes + size > self._cache_memory:
            raise ResourceExhausted(
                f"no room for this cache: it needs {size} bytes, {self._cache_memory - self.pinned_bytes} of "
                f"local.cache_memory ({self._cache_memory} bytes) are free; delete a cache or wait for one to expire"
            )
        pinned = Pinned(model=model, key=next(self._pin_keys), tokens=len(tokens), size=size)
        self._pinned[pinned.key] = pinned
        local.pins[pinned.key] = tuple(tokens)
        return pinned

    def unpin(self, pinned: Pinned) -> None:
        if self._pinned.pop(pinned.key, None) is not None:
            self._models[pinned.model].pins.pop(pinned.key, None)

    async def count_tokens(self, model: str, request: g.GenerateContentRequest) -> int:
        """The prompt tokens of ``request`` on ``model`` (``countTokens``), off the event loop."""
        local = self._models.get(model)
        if local is None:
            raise NotFound(f"no local model named {model!r}", param="model", code="model_not_found")
        return await asyncio.to_thread(local.count_tokens, request)

    async def aclose(self) -> None:
        for model in self._models.values():
            await asyncio.to_thread(model.close)
