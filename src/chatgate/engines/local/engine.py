"""The local engine: llama.cpp models on the CPU, behind the Engine contract.

Each model has one generation thread (llama.cpp contexts are not thread-safe) and a bounded
wait queue: a request that finds the model busy waits its turn; one that finds the queue
full gets a 429 with an estimate of when to retry. Tokens travel from the generation thread
to the event loop one by one; closing the response iterator sets a flag the thread checks
before every token, so a client that goes away stops its generation within a token or two.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from chatgate.config import Settings
from chatgate.engines.local import prompt as prompts
from chatgate.engines.local.models import LocalModelSpec, ModelUnavailable, specs
from chatgate.engines.local.stops import StopFilter
from chatgate.errors import ContextLengthExceeded, InvalidRequest, NotFound, RateLimited
from chatgate.protocols import gemini as g

log = logging.getLogger("chatgate.local")

# llama.cpp's own sampling defaults that OpenAI requests have no field for.
TOP_K = 40
MIN_P = 0.05


@dataclass(frozen=True, slots=True)
class _Text:
    candidate: int
    text: str


@dataclass(frozen=True, slots=True)
class _End:
    candidate: int
    reason: str  # Gemini finishReason
    tokens: int


@dataclass(frozen=True, slots=True)
class _Done:
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


Event = _Text | _End | _Done | _Failed


class LocalModel:
    """One loaded GGUF, its generation thread and its wait queue."""

    def __init__(self, spec: LocalModelSpec) -> None:
        self.spec = spec
        self.llama: Any = None
        self._format: Callable[..., Any] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{spec.name}")
        self._busy = asyncio.Lock()
        self._waiting = 0
        self._seconds_per_job = 2.0  # a moving average, for Retry-After
        # How the last candidate generation ended (finish reason or "CANCELLED", tokens made).
        self.last_run: tuple[str, int] | None = None

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        started = time.perf_counter()
        self.llama = llama_cpp.Llama(
            model_path=str(self.spec.path),
            n_ctx=self.spec.context_size,
            n_threads=self.spec.threads,
            n_batch=min(512, self.spec.context_size),
            verbose=False,
        )
        template = self.spec.chat_template or self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelUnavailable(f"model {self.spec.name}: the GGUF has no chat template; "
                                   f"set models.\"{self.spec.name}\".chat_template")
        model = self.llama._model
        eos, bos = self.llama.token_eos(), self.llama.token_bos()
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        log.info("loaded %s from %s in %.1f s (context %d tokens, %s threads)", self.spec.name, self.spec.path,
                 time.perf_counter() - started, self.spec.context_size, self.spec.threads or "default")

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self.llama is not None:
            self.llama.close()
            self.llama = None

    # --- scheduling ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    @property
    def waiting(self) -> int:
        return self._waiting

    async def _acquire(self) -> None:
        if self._busy.locked() and self._waiting >= self.spec.queue_size:
            raise RateLimited(
                f"model {self.spec.name!r} is busy and its queue is full; retry later",
                retry_after=self._seconds_per_job * (self._waiting + 1),
            )
        self._waiting += 1
        try:
            await self._busy.acquire()
        finally:
            self._waiting -= 1

    async def generate(self, request: g.GenerateContentRequest, *, stream: bool) -> AsyncIterator[g.GenerateContentResponse]:
        messages = prompts.messages(request, self.spec.name)
        sampling = prompts.sampling(request)
        await self._acquire()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        cancel = threading.Event()
        started = time.perf_counter()

        def emit(event: Event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def release(_: object) -> None:
            elapsed = time.perf_counter() - started
            self._seconds_per_job = 0.8 * self._seconds_per_job + 0.2 * elapsed
            loop.call_soon_threadsafe(self._busy.release)

        try:
            job = loop.run_in_executor(self._executor, self._run, messages, sampling, cancel, emit)
        except BaseException:
            self._busy.release()
            raise
        job.add_done_callback(release)
        try:
            async for response in _responses(events, stream, sampling.n):
                yield response
        finally:
            cancel.set()

    # --- the generation thread ------------------------------------------------------------

    def _run(self, messages: list[dict[str, str]], sampling: prompts.Sampling,
             cancel: threading.Event, emit: Callable[[Event], None]) -> None:
        try:
            tokens = self._prompt_tokens(messages)
            for candidate in range(sampling.n):
                if cancel.is_set():
                    return
                self._generate_one(candidate, tokens, sampling, cancel, emit)
            emit(_Done(prompt_tokens=len(tokens)))
        except BaseException as exc:  # delivered to the event loop, raised there
            emit(_Failed(exc))

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        assert self._format is not None
        try:
            formatted = self._format(messages=messages)
        except Exception as exc:  # the template itself refused the conversation
            raise InvalidRequest(f"model {self.spec.name!r} cannot take this conversation: {exc}",
                                 param="messages") from None
        tokens = self.llama.tokenize(formatted.prompt.encode("utf-8"),
                                     add_bos=not formatted.added_special, special=True)
        limit = self.llama.n_ctx()
        if len(tokens) >= limit:
            raise ContextLengthExceeded(
                f"this model's context window is {limit} tokens, but the messages take {len(tokens)} tokens; "
                "shorten them", param="messages")
        return tokens

    def _generate_one(self, candidate: int, tokens: list[int], s: prompts.Sampling,
                      cancel: threading.Event, emit: Callable[[Event], None]) -> None:
        import llama_cpp

        llama = self.llama
        vocab = llama._model.vocab
        seed = s.seed + candidate if s.seed is not None else random.getrandbits(32)
        llama.set_seed(seed & 0xFFFFFFFF)
        room = llama.n_ctx() - len(tokens)
        max_tokens = min(s.max_tokens or room, room)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        stops = StopFilter(list(s.stop))
        produced = 0
        reason = "MAX_TOKENS"
        for token in llama.generate(tokens, top_k=TOP_K, top_p=s.top_p, min_p=MIN_P, temp=s.temperature,
                                    repeat_penalty=1.0, frequency_penalty=s.frequency_penalty,
                                    presence_penalty=s.presence_penalty):
            if cancel.is_set():
                self.last_run = ("CANCELLED", produced)
                return
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                reason = "STOP"
                break
            produced += 1
            text = stops.push(decoder.decode(llama.detokenize([token])))
            if text:
                emit(_Text(candidate, text))
            if stops.stopped:
                reason = "STOP"
                break
            if produced >= max_tokens:
                break
        if not stops.stopped:
            tail = stops.push(decoder.decode(b"", final=True)) + stops.flush()
            if tail:
                emit(_Text(candidate, tail))
        self.last_run = (reason, produced)
        emit(_End(candidate, reason, produced))


async def _responses(events: asyncio.Queue[Event], stream: bool, n: int) -> AsyncIterator[g.GenerateContentResponse]:
    """Events from the generation thread → Gemini response chunks.

    Streaming: one chunk per batch of events ready at once (a slow reader gets fewer,
    larger chunks). Not streaming: one response at the end."""
    texts: dict[int, list[str]] = {}
    reasons: dict[int, str] = {}
    completion_tokens = 0
    while True:
        batch = [await events.get()]
        while not events.empty():
            batch.append(events.get_nowait())
        pending: dict[int, list[str]] = {}
        ended: dict[int, str] = {}
        done: _Done | None = None
        for event in batch:
            if isinstance(event, _Failed):
                raise event.error
            if isinstance(event, _Text):
                (pending if stream else texts).setdefault(event.candidate, []).append(event.text)
            elif isinstance(event, _End):
                (ended if stream else reasons)[event.candidate] = event.reason
                completion_tokens += event.tokens
            else:
                done = event
        if stream and (pending or ended):
            yield _response(pending, ended)
        if done is not None:
            usage = g.UsageMetadata(
                prompt_token_count=done.prompt_tokens,
                candidates_token_count=completion_tokens,
                total_token_count=done.prompt_tokens + completion_tokens,
            )
            final = _response({} if stream else texts, {} if stream else reasons, all_candidates=None if stream else n)
            final.usage_metadata = usage
            yield final
            return


def _response(texts: dict[int, list[str]], reasons: dict[int, str], all_candidates: int | None = None) -> g.GenerateContentResponse:
    indexes = range(all_candidates) if all_candidates is not None else sorted(set(texts) | set(reasons))
    return g.GenerateContentResponse(candidates=[
        g.Candidate(
            index=i,
            content=g.Content(role="model", parts=[g.Part(text="".join(texts[i]))] if i in texts else []),
            finish_reason=reasons.get(i),
        )
        for i in indexes
    ])


class LocalEngine:
    """Every local model, by name and alias."""

    def __init__(self, model_specs: list[LocalModelSpec]) -> None:
        self._models = {spec.name: LocalModel(spec) for spec in model_specs}
        self._names: dict[str, str] = {}
        for spec in model_specs:
            for name in (spec.name, *spec.aliases):
                self._names[name] = spec.name
                self._names[name.lower()] = spec.name

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEngine:
        return cls(specs(settings))

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

    def generate(self, model: str, request: g.GenerateContentRequest, *, stream: bool) -> AsyncIterator[g.GenerateContentResponse]:
        local = self._models.get(model)
        if local is None:
            raise NotFound(f"no local model named {model!r}", param="model", code="model_not_found")
        return local.generate(request, stream=stream)

    async def aclose(self) -> None:
        for model in self._models.values():
            await asyncio.to_thread(model.close)
