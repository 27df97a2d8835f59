"""chatgate's own per-request knobs, which neither OpenAI's request nor Gemini's has a field
for: ``extra_body.chatgate`` (decoded by ``translate/chatgate.py``), handed to the engine
beside the canonical request. Engines that have nothing to tune ignore them."""

from __future__ import annotations

import msgspec


class Tuning(msgspec.Struct, frozen=True, kw_only=True):
    """None: the model's configured default."""

    # Loop control (llama.cpp's DRY multiplier; 0 turns it off) under a grammar (JSON
    # answers, tool-call arguments) and for free text.
    loop_control: float | None = None
    text_loop_control: float | None = None
    # Tool choice AUTO: the bias towards a call (engines/local/decide.py).
    tool_call_bias: float | None = None


NO_TUNING = Tuning()
