"""Tool choice AUTO on a local model: a call or text, decided before the answer starts.

Left to itself a small model almost never starts a call, even when a tool plainly fits:
SmolLM2-135M answers Google's weather sample ("What is the weather in Boston, MA?" with
``get_current_weather``) in prose, telling the user which function to use. But how likely it
finds the call's opener, ``<tool_call>``, under the prompt that lists the tools separates the
questions a tool answers from those none does far better than what it samples: the first
token ``<`` alone barely does, the whole opener does (``bench/tool_choice.py``; the weather
question scores about -5.6, "Write a haiku about autumn" -11.8).

So the opener's log-probability is read once, with the opener forced token by token (the
KV cache then holds it, and a call continues from there), and the answer is a call when
``log P(opener) + bias > 0``; ``bias`` is the model's ``tool_call_bias`` (per request:
``extra_body.chatgate.tool_call_bias``). The score reads logits only, so the decision is the
same for every seed and temperature; what follows is sampled as the request asks.

After a function's result comes back the answer is text: a small model reading its own
past call in the prompt would copy it (``<`` is its likeliest first token there), and the
agent loop would never close.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from chatgate.engines.local.batching import Stream

_MINUS_INFINITY = np.float32(-np.inf)


def opener_logprob(context: Stream, prompt: Sequence[int], opener: Sequence[int]) -> float:
    """log P(``opener`` | ``prompt``) under the model alone (no penalties, no sampling)."""
    forcing = _Forcing(opener)
    tokens = context.generate(prompt, temperature=0.0, top_p=1.0, top_k=1, min_p=0.0, logits_processor=forcing)
    try:
        for _ in opener:  # each step decodes the token forced at the step before
            next(tokens)
    finally:
        tokens.close()  # type: ignore[attr-defined]  # a generator
    return forcing.total


class _Forcing:
    """A logits processor that adds up the log-probability of the next expected token, then
    allows only that token."""

    def __init__(self, expected: Sequence[int]) -> None:
        self.expected = list(expected)
        self.step = 0
        self.total = 0.0

    def __call__(self, _input_ids: object, logits: np.ndarray) -> np.ndarray:
        token = self.expected[self.step]
        self.step += 1
        top = float(np.max(logits))
        self.total += float(logits[token]) - top - math.log(float(np.sum(np.exp(logits - top))))
        forced = np.full_like(logits, _MINUS_INFINITY)
        forced[token] = logits[token]
        return forced


class BanFirst:
    """A logits processor for free text that forbids ``token`` as the answer's first token
    (the start of a call's opener, after a function result), then lets everything through."""

    def __init__(self, token: int) -> None:
        self.token = token
        self.first = True

    def __call__(self, _input_ids: object, logits: np.ndarray) -> np.ndarray:
        if not self.first:
            return logits
        self.first = False
        banned = logits.copy()
        banned[self.token] = _MINUS_INFINITY
        return banned
