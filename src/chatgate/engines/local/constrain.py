"""Grammar-constrained sampling with llguidance, inside llama.cpp's sampler chain.

``Constraint`` wraps an ``LLMatcher`` and acts as a llama-cpp-python logits processor: before
each token is sampled it sets every token the grammar forbids to -inf (llguidance computes
the allowed set in tens of microseconds, against a ~10 ms decoding step); after a token is
sampled the generation loop commits it with ``advance``. The processor runs first in the
chain, so penalties, top-k/top-p and temperature only ever choose among allowed tokens.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from chatgate.engines.local.llama import Context

_MINUS_INFINITY = np.float32(-np.inf)
_tokenizers: dict[str, Any] = {}
_lock = threading.Lock()


def tokenizer(context: Context) -> Any:
    """llguidance's view of a model's vocabulary: built once per model file (about a
    second) and shared by every context of that model."""
    key = str(context.path)
    with _lock:
        found = _tokenizers.get(key)
        if found is None:
            found = _tokenizers[key] = context.guidance_tokenizer()
        return found


def forget(context: Context) -> None:
    with _lock:
        _tokenizers.pop(str(context.path), None)


class Constraint:
    def __init__(self, context: Context, grammar: str) -> None:
        import llguidance

        self._matcher = llguidance.LLMatcher(tokenizer(context), grammar, log_level=0)
        if self._matcher.is_error():
            raise RuntimeError(f"grammar rejected: {self._matcher.get_error()}")

    def __call__(self, _input_ids: Any, logits: np.ndarray) -> np.ndarray:
        words = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
        allowed = np.unpackbits(words, bitorder="little", count=len(logits)).view(bool)
        # ``logits`` is a strided view into llama.cpp's candidate array; a new contiguous
        # array (copied back by llama-cpp-python) is the cheaper way to mask it.
        return np.where(allowed, logits, _MINUS_INFINITY)

    def advance(self, token: int) -> None:
        if not self._matcher.consume_token(token):
            raise RuntimeError(f"constrained decoding went off its grammar: {self._matcher.get_error()}")

    @property
    def finished(self) -> bool:
        """The grammar admits nothing more: the answer is complete."""
        return bool(self._matcher.is_stopped())
