"""The one door to llama-cpp-python.

Everything chatgate needs of llama.cpp goes through ``Context``: loading a model file (with or
without llama.cpp's extra CPU buffer types), tokenizing, sampling, thread counts, the chat
template and vocabulary. Private attributes of llama-cpp-python (``Llama._model``, ``_ctx``)
and low-level ``llama_cpp.llama_*`` calls appear in this module only, so that a new
llama-cpp-python release, or decoding several sequences in one context, changes this file.
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

# ``Llama.__init__`` builds its model parameters from ``llama_model_default_params()`` and has
# no argument for ``use_extra_bufts``; loading without extra buffer types swaps that function
# for the duration of one load, so loads are serialised.
_loading = threading.Lock()


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


class Context:
    """A model file loaded into llama.cpp, with one context (its own KV cache).

    Not thread-safe: one thread at a time. ``extra_buffers`` says whether llama.cpp may put
    weights in its extra CPU buffer types (AMX tiles, repacked layouts for wider SIMD): faster
    where they work, a crash on CPUs that advertise instructions the system does not allow.
    """

    def __init__(self, path: Path, *, context_size: int, threads: int, extra_buffers: bool = True) -> None:
        import llama_cpp
        import llama_cpp.llama_cpp as low

        self.path = path
        with _loading:
            default_params = low.llama_model_default_params

            def params() -> low.llama_model_params:
                made = default_params()
                made.use_extra_bufts = extra_buffers
                return made

            low.llama_model_default_params = params
            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=context_size,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_batch=min(512, context_size),
                    verbose=False,
                )
            finally:
                low.llama_model_default_params = default_params
        if self.extra_buffers != extra_buffers:  # a llama-cpp-python change
            raise RuntimeError(f"llama-cpp-python {version()} ignored use_extra_bufts={extra_buffers}")
        self._model = self._llama._model
        self._vocab = self._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog

    @property
    def extra_buffers(self) -> bool:
        """Whether the model was loaded with llama.cpp's extra buffer types allowed."""
        return bool(self._llama.model_params.use_extra_bufts)

    # --- what the model file says ---------------------------------------------------------

    @property
    def size(self) -> int:
        """The context window, in tokens."""
        return int(self._llama.n_ctx())

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache one token takes (keys and values in f16, every layer), from the
        GGUF's metadata."""
        meta = self._llama.metadata
        arch = meta.get("general.architecture", "llama")
        layers = int(meta.get(f"{arch}.block_count", 1))
        heads = int(meta.get(f"{arch}.attention.head_count", 1)) or 1
        kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
        embd = int(meta.get(f"{arch}.embedding_length", 0))
        key = int(meta.get(f"{arch}.attention.key_length", embd // heads))
        value = int(meta.get(f"{arch}.attention.value_length", embd // heads))
        return max(1, layers * kv_heads * (key + value) * 2)

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
                stop_token_ids=[eos],
                add_generation_prompt=generation_prompt,
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

    # --- generating -----------------------------------------------------------------------

    def set_seed(self, seed: int) -> None:
        self._llama.set_seed(seed & 0xFFFFFFFF)

    def set_threads(self, threads: int) -> None:
        """CPU threads for the next decodes (prompt and generation alike)."""
        self._llama._ctx.set_n_threads(threads, threads)

    def generate(
        self,
        tokens: Sequence[int],
        *,
        temperature: float,
        top_p: float,
        top_k: int,
        min_p: float,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        dry: Dry | None = None,
        logits_processor: LogitsProcessor | None = None,
    ) -> Iterator[int]:
        """Tokens sampled after ``tokens``, one per decode, for as long as the caller asks.

        The KV cache is reused for the longest prefix ``tokens`` shares with what this context
        decoded last. The sampler chain, in llama.cpp's own order: ``logits_processor`` (a
        grammar's mask: it decides what is allowed), frequency and presence penalties over
        every token generated so far (OpenAI's definition), ``dry`` (loop control), then
        greedy choice at temperature 0, else top-k, top-p, min-p, temperature and the seeded
        draw. Penalties only re-weight what the mask allowed: a masked token stays -inf."""
        chain = self._chain(
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
                view.logit[:] = logits_processor(llama._input_ids, view.logit)

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
            chain.add_dist(llama._seed)
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
