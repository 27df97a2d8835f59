"""chatgate's own extensions on an OpenAI request: ``extra_body.chatgate`` (the OpenAI SDK's
``extra_body={"chatgate": {...}}`` puts it at the top level of the body, which is accepted
too; ``extra_body.chatgate`` wins where both set a key). Decoded and checked once, into
``Tuning`` (loop control, the tool-call bias of tool choice AUTO); a bad value is a 400
naming its path, an unknown key is ignored as OpenAI's unknown fields are."""

from __future__ import annotations

import logging
import math
from typing import Any

from msgspec import UNSET

from chatgate.errors import InvalidRequest
from chatgate.protocols import openai as o
from chatgate.protocols.tuning import NO_TUNING, Tuning

log = logging.getLogger(__name__)

# The ranges `local.loop_control` and `local.tool_call_bias` take in the configuration.
LOOP_CONTROL_MAX = 10.0
BIAS_MAX = 100.0


def tuning(request: o.ChatCompletionRequest) -> Tuning:
    raw: dict[str, tuple[Any, str]] = {}
    for source, where in (
        (request.chatgate, "chatgate"),
        (request.extra_body.chatgate if request.extra_body is not None else UNSET, "extra_body.chatgate"),
    ):
        if source is UNSET or source is None:
            continue
        if not isinstance(source, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        raw.update({k: (v, f"{where}.{k}") for k, v in source.items()})
    if not raw:
        return NO_TUNING
    found: dict[str, float] = {}
    for key, (value, param) in raw.items():
        if value is None:
            continue
        if key in ("loop_control", "text_loop_control"):
            found[key] = _strength(value, param)
        elif key == "tool_call_bias":
            found[key] = _bias(value, param)
        else:
            log.debug("ignoring unknown extension %s", param)
    return Tuning(**found) if found else NO_TUNING


def _strength(value: Any, param: str) -> float:
    # bool is an int to Python, not a strength to anyone.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"must be a number from 0 (off) to {LOOP_CONTROL_MAX:g}", param=param)
    if not 0 <= value <= LOOP_CONTROL_MAX:
        raise InvalidRequest(f"must be from 0 (off) to {LOOP_CONTROL_MAX:g}, not {value}", param=param)
    return float(value)


def _bias(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"must be a number from -{BIAS_MAX:g} to {BIAS_MAX:g}", param=param)
    if not -BIAS_MAX <= value <= BIAS_MAX:
        raise InvalidRequest(f"must be from -{BIAS_MAX:g} to {BIAS_MAX:g}, not {value}", param=param)
    return float(value)
