"""Thinking: ``reasoning_effort``, thought tags in text, and thought signatures in history.

- ``reasoning_effort`` becomes a ``thinkingBudget`` on Gemini 2.x (Vertex's documented
  budgets) and a ``thinkingLevel`` on Gemini 3 and later (Google's compatibility table:
  minimal and low → LOW, medium and high → HIGH). It cannot be combined with
  ``extra_body.google.thinking_config`` (400, as Vertex documents).
- With ``thought_tag_marker: "X"``, thought text is shown as ``<X>…</X>`` inside ``content``;
  on the way back in, tagged assistant text becomes ``thought: true`` parts again.
"""

from __future__ import annotations

import re

from chatgate.errors import InvalidRequest, Unsupported
from chatgate.protocols import gemini as g
from chatgate.translate.models import ModelTraits

_BUDGETS = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576, "max": 24576}
_LEVELS = {"minimal": "LOW", "low": "LOW", "medium": "HIGH", "high": "HIGH", "xhigh": "HIGH", "max": "HIGH"}


def thinking_config(
    effort: str | None, config: g.ThinkingConfig | None, model: ModelTraits
) -> g.ThinkingConfig | None:
    if effort is None:
        return config
    if config is not None:
        raise InvalidRequest(
            "give reasoning_effort or extra_body.google.thinking_config, not both", param="reasoning_effort"
        )
    if not model.gemini3:
        return g.ThinkingConfig(thinking_budget=_BUDGETS[effort])
    if effort == "none":
        raise Unsupported("thinking cannot be turned off on Gemini 3 models", param="reasoning_effort")
    return g.ThinkingConfig(thinking_level=_LEVELS[effort])


def tags(marker: str) -> tuple[str, str]:
    return f"<{marker}>", f"</{marker}>"


def split_tagged(text: str, marker: str) -> list[tuple[str, bool]]:
    """``"<t>a</t>b"`` → ``[("a", True), ("b", False)]``; empty pieces are dropped.

    An unclosed opening tag makes the rest of the text a thought, as a stream cut short
    inside a thought renders it.
    """
    pattern = re.compile(rf"<{re.escape(marker)}>(.*?)(?:</{re.escape(marker)}>|\Z)", re.DOTALL)
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            pieces.append((text[position : match.start()], False))
        if match.group(1):
            pieces.append((match.group(1), True))
        position = match.end()
    if position < len(text):
        pieces.append((text[position:], False))
    return [(piece, thought) for piece, thought in pieces if piece]


def fill_missing_signatures(request: g.GenerateContentRequest) -> int:
    """Give the first function call of each model step of the current turn the dummy
    signature when the step carries none (Google's documented last resort for histories
    it did not produce). The current turn starts after the last user content that holds
    something other than function responses. Returns how many parts were changed."""
    start = 0
    for i, content in enumerate(request.contents):
        if content.role == "user" and any(p.function_response is None for p in content.parts):
            start = i + 1
    changed = 0
    for content in request.contents[start:]:
        if content.role != "model":
            continue
        calls = [p for p in content.parts if p.function_call is not None]
        if calls and not any(p.thought_signature for p in calls):
            calls[0].thought_signature = g.SKIP_THOUGHT_SIGNATURE
            changed += 1
    return changed
