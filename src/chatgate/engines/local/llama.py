"""The one door to llama-cpp-python.

Everything chatgate needs of llama.cpp goes through ``Context``: loading a model file (with or
without llama.cpp's extra CPU buffer types), tokenizing, sampling, thread counts, the chat
template and vocabulary, and the batched decoding the scheduler (``batching.py``) drives: one
context holding several sequences (llama.cpp's sequence ids, one shared KV cache), a
``Batch`` of tokens from any of them decoded at once, per-sequence ``Sampler`` chains, and the
KV cache operations (drop, share, save, restore a sequence). Private attributes of
llama-cpp-python (``Llama._model``, ``_ctx``) and low-level ``llama_cpp.llama_*`` calls appear in
this module only, so that a new llama-cpp-python release changes this file.
"""

from __future__ import annotations

import platform
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

# llama-cpp-python's logits processor: (tokens so far, logits) -> logits.
LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]

# ``Llama.__init__`` builds its model and context parameters from ``llama_model_default_params()``
# and ``llama_context_default_params()`` and has no argument for ``use_extra_bufts``,
# ``n_seq_max`` or ``kv_unified``; a load swaps those functions for its duration, so loads
# are serialised.
_loading = threading.Lock()
# Batches the scheduler decodes hold at most this many tokens (llama.cpp's n_batch and
# n_ubatch alike: one batch is one pass over the weights, never split).
BATCH = 512
_NO_IDS = np.zeros(0, dtype=np.intc)


@dataclass(frozen=True, slots=True)
class Dry:
    """llama.cpp's DRY ("don't repeat yourself") sampler: a token that would extend a run
    of tokens already generated, longer than ``allowed_length``, loses
    ``multiplier * base ** (run - allowed_length)`` of its logit. A run restarts after a
    ``breakers`` string (none: JSON's quotes and colons would cut every run short)."""

    multiplier: float
    base: float = 1.75
    allowed_length: int = 2
    breakers: tuple[str, ...] = ()


class ChatFormat(Protocol):
    """llama-cpp-python's Jinja2 chat formatter: messages (and tools) -> a prompt."""

    def __call__(self, *, messages: list[Any], tools: list[dict[str, Any]] | None = None) -> Any: ...


def version() -> str:
    """The installed llama-cpp-python release."""
    import llama_cpp

    return str(llama_cpp.__version__)


def system_info() -> str:
    """llama.cpp's own account of its build: the CPU features it was compiled for and uses."""
    import llama_cpp

    return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", "replace").strip()


def cpu() -> str:
    """The CPU model and the feature flags it advertises (Linux: /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in ("model name", "flags", "Features", "CPU implementer", "CPU part") and key not in fields:
            fields[key] = value.strip()
    return "; ".join(f"{k}: {v}" for k, v in fields.items()) or platform.machine()


class Batch:
    """Tokens to decode at once, each with its position, its sequence and whether its logits
    are wanted (then it gets an output index to sample from)."""

    def __init__(self, capacity: int = BATCH) -> None:
        import llama_cpp

        self.capacity = capacity
        self._batch = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.size = 0
        self.outputs = 0

    def add(self, token: int, position: int, sequence: int, *, logits: bool) -> int:
        """Append a token; its output index when ``logits`` (else -1)."""
        i = self.size
        if i >= self.capacity:
            raise ValueError("batch full")
        batch = self._batch
        batch.token[i] = token
        batch.pos[i] = position
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = sequence
        batch.logits[i] = logits
        self.size = batch.n_tokens = i + 1
        if not logits:
            return -1
        self.outputs += 1
        return i

    def clear(self) -> None:
        self.size = self._batch.n_tokens = 0
        self.outputs = 0

    def close(self) -> None:
        import llama_cpp

        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None


class Sampler:
    """One sequence's sampler chain (see ``Context.sampler``)."""

    def __init__(self, chain: Any) -> None:
        self._chain = chain

    def sample(self, context: Context, index: int) -> int:
        """Sample (and accept, for penalties and DRY) a token from output ``index`` of the
        last decode."""
        import llama_cpp

        return int(llama_cpp.llama_sampler_sample(self._chain.sampler, context._ctx, index))

    def close(self) -> None:
        self._chain.close()


class Context:
    """A model file loaded into llama.cpp, with one context: one KV cache holding up to
    ``sequences`` sequences of up to ``context_size`` tokens each.

    Not thread-safe: one thread at a time decodes and touches the cache; tokenizing and the
    vocabulary (read-only) may be used from any thread. ``extra_buffers`` says whether
    llama.cpp may put weights in its extra CPU buffer types (AMX tiles, repacked layouts for
    wider SIMD): faster where they work, a crash on CPUs that advertise instructions the
    system does not allow.
    """

    def __init__(
        self,
        path: Path,
        *,
        context_size: int,
        threads: int,
        extra_buffers: bool = True,
        sequences: int = 1,
    ) -> None:
        import llama_cpp
        import llama_cpp.llama_cpp as low

        self.path = path
        self.sequences = sequences
        self._window = context_size
        with _loading:
            model_defaults = low.llama_model_default_params
            context_defaults = low.llama_context_default_params

            def model_params() -> low.llama_model_params:
                made = model_defaults()
                made.use_extra_bufts = extra_buffers
                return made

            def context_params() -> low.llama_context_params:
                made = context_defaults()
                made.n_seq_max = sequences
                # A cache of ``context_size`` cells per sequence, rather than one shared by all:
                # a sequence's tokens then always sit at the cells of their positions, and
                # llama.cpp's attention sums (which depend on where cells are) come out the same
                # whatever else the cache holds. Sharing a prefix copies a sequence's cells.
                made.kv_unified = False
                made.n_ubatch = min(BATCH, context_size)
                return made

            low.llama_model_default_params = model_params
            low.llama_context_default_params = context_params
            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=context_size * sequences,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_batch=min(BATCH, context_size),
                    n_ubatch=min(BATCH, context_size),
                    verbose=False,
                )
            finally:
                low.llama_model_default_params = model_defaults
                low.llama_context_default_params = context_defaults
        if self.extra_buffers != extra_buffers:  # a llama-cpp-python change
            raise RuntimeError(f"llama-cpp-python {version()} ignored use_extra_bufts={extra_buffers}")
        if int(low.llama_n_seq_max(self._llama._ctx.ctx)) < sequences:
            raise RuntimeError(f"llama-cpp-python {version()} ignored n_seq_max={sequences}")
        self._model = self._llama._model
        self._vocab = self._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._ctx = self._llama._ctx.ctx
        self._memory = low.llama_get_memory(self._ctx)

    @property
    def extra_buffers(self) -> bool:
        """Whether the model was loaded with llama.cpp's extra buffer types allowed."""
        return bool(self._llama.model_params.use_extra_bufts)

    # --- what the model file says ---------------------------------------------------------

    @property
    def size(self) -> int:
        """The context window of one sequence, in tokens."""
        return self._window

    @property
    def chat_template(self) -> str | None:
        return self._llama.metadata.get("tokenizer.chat_template") or None

    def chat_format(self, template: str, *, generation_prompt: bool = True) -> ChatFormat:
        """A renderer for ``template`` with this model's own BOS and EOS text; without
        ``generation_prompt``, the conversation alone (a prefix for a context cache)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos, bos = self._llama.token_eos(), self._llama.token_bos()
        return cast(
            ChatFormat,
            Jinja2ChatFormatter(
                template=template,
                eos_token=self._model.token_get_text(eos) if eos != -1 else "",
                bos_token=self._model.token_get_text(bos) if bos != -1 else "",
                add_generation_prompt=generation_prompt,
                stop_token_ids=[eos],
            ),
        )

    def guidance_tokenizer(self) -> Any:
        """llguidance's view of this model's vocabulary (about a second to build)."""
        import llguidance.llamacpp

        with warnings.catch_warnings():
            # llguidance reads token attributes through a llama.cpp call its newer releases
            # deprecate (once per token of the vocabulary): not ours to fix.
            warnings.filterwarnings("ignore", "llama_token_get_attr is deprecated", DeprecationWarning)
            return llguidance.llamacpp.lltokenizer_from_vocab(self._vocab)

    # --- tokens ---------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        """The bytes of ``tokens`` (a token may end inside a UTF-8 character)."""
        return bytes(self._llama.detokenize(list(tokens)))

    def is_end(self, token: int) -> bool:
        """Whether ``token`` ends generation (end of turn, end of text)."""
        return bool(self._is_eog(self._vocab, token))

    # --- several sequences in one cache (the scheduler's thread only) -----------------------

    def decode(self, batch: Batch) -> int:
        """Decode ``batch`` in one call: 0 on success, 1 when the cache has no room for it
        (nothing was decoded), anything else a failure."""
        import llama_cpp

        return int(llama_cpp.llama_decode(self._ctx, batch._batch))

    def drop(self, sequence: int, start: int = 0) -> None:
        """Forget ``sequence``'s cache from position ``start`` on (all of it by default)."""
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self._memory, sequence, start, -1)

    def share(self, source: int, target: int, length: int) -> None:
        """Give ``target`` the cached positions [0, length) of ``source``: llama.cpp copies a
        sequence's cells whole (at the next decode), the rest is dropped."""
        import llama_cpp

        self.drop(target)
        llama_cpp.llama_memory_seq_cp(self._memory, source, target, -1, -1)
        self.drop(target, length)

    def save(self, sequence: int) -> bytes:
        """``sequence``'s KV state, to ``restore`` later into any sequence."""
        import ctypes

        import llama_cpp

        size = int(llama_cpp.llama_state_seq_get_size(self._ctx, sequence))
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(self._ctx, buffer, size, sequence))
        return bytes(buffer[:written])

    def restore(self, sequence: int, state: bytes) -> bool:
        """Load a saved state into ``sequence`` (emptied first); false when it did not fit."""
        import ctypes

        import llama_cpp

        self.drop(sequence)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        return bool(llama_cpp.llama_state_seq_set_data(self._ctx, buffer, len(state), sequence))

    def sampler(
        self,
        *,
        seed: int,
        temperature: float,
        top_p: float,
        top_k: int,
        min_p: float,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        dry: Dry | None = None,
        logits_processor: LogitsProcessor | None = None,
    ) -> Sampler:
        """One sequence's sampler chain, in llama.cpp's own order: ``logits_processor`` (a
        grammar's mask: it decides what is allowed), frequency and presence penalties over
        every token sampled with it (OpenAI's definition), ``dry`` (loop control), then greedy
        choice at temperature 0, else top-k, top-p, min-p, temperature and the draw seeded
        with ``seed``. Penalties only re-weight what the mask allowed: a masked token stays -inf."""
        return Sampler(
            self._chain(
                seed=seed,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                min_p=min_p,
                frequency_penalty=frequency_penalty,
                presence_penalty=presence_penalty,
                dry=dry,
                logits_processor=logits_processor,
            )
        )

    # --- one sequence, llama-cpp-python's own loop ------------------------------------------

    def generate(
        self,
        tokens: Sequence[int],
        *,
        temperature: float,
        top_p: float,
        top_k: int,
        min_p: float,
        seed: int = 0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        dry: Dry | None = None,
        logits_processor: LogitsProcessor | None = None,
    ) -> Iterator[int]:
        """Tokens sampled after ``tokens`` in sequence 0, one per decode, for as long as the
        caller asks, by llama-cpp-python's own loop (``sampler``'s chain): for the probe and
        benchmarks of one sequence; serving goes through ``batching.Scheduler``."""
        chain = self._chain(
            seed=seed,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            min_p=min_p,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            dry=dry,
            logits_processor=logits_processor,
        )
        llama = self._llama

        def tokens_of() -> Iterator[int]:
            inner = llama.generate(list(tokens), reset=True)
            # ``Llama.generate`` builds its sampler chain on its first step, from arguments
            # that have no room for DRY: it is handed this chain instead.
            llama._init_sampler = lambda **_: chain  # type: ignore[method-assign]
            yield from inner

        return tokens_of()

    def _chain(
        self,
        *,
        seed: int,
        temperature: float,
        top_p: float,
        top_k: int,
        min_p: float,
        frequency_penalty: float,
        presence_penalty: float,
        dry: Dry | None,
        logits_processor: LogitsProcessor | None,
    ) -> Any:
        import ctypes

        import llama_cpp
        from llama_cpp._internals import LlamaSampler

        chain = LlamaSampler()
        llama = self._llama
        if logits_processor is not None:

            def apply(candidates: Any) -> None:
                array = candidates.contents
                data = (llama_cpp.llama_token_data * array.size).from_address(ctypes.addressof(array.data.contents))
                view = np.recarray(
                    shape=(array.size,),
                    buf=data,
                    dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True),
                )
                view.logit[:] = logits_processor(_NO_IDS, view.logit)

            chain.add_custom(apply)
        if frequency_penalty or presence_penalty:
            chain.add_penalties(
                n_vocab=llama.n_vocab(),
                penalty_last_n=self.size,
                penalty_repeat=1.0,
                penalty_freq=frequency_penalty,
                penalty_present=presence_penalty,
            )
        if dry is not None and dry.multiplier > 0:
            chain.add_dry(self._model, dry.multiplier, dry.base, dry.allowed_length, self.size, list(dry.breakers))
        if temperature <= 0.0:
            chain.add_greedy()
        else:
            chain.add_top_k(top_k)
            chain.add_top_p(top_p, 1)
            chain.add_min_p(min_p, 1)
            chain.add_temp(temperature)
            chain.add_dist(seed & 0xFFFFFFFF)
        return chain

    def close(self) -> None:
        self._llama.close()


def smoke(path: Path, *, extra_buffers: bool) -> None:
    """Load ``path`` into a tiny context and decode: a short prompt (one batch), then one
    token. What the first request would do, at the least cost."""
    context = Context(path, context_size=128, threads=1, extra_buffers=extra_buffers)
    try:
        tokens = context.tokenize("The quick brown fox jumps over the lazy dog.", add_bos=True, special=False)
        generated = context.generate(tokens, temperature=0.0, top_p=1.0, top_k=1, min_p=0.0)
        next(generated)  # the prompt's decode
        next(generated)  # one token's decode
    finally:
        context.close()
