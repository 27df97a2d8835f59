"""Thinking: ``reasoning_effort``, and thought tags in text.

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


def thinking_config(effort: str | None, config: g.ThinkingConfig | None, model: ModelTraits) -> g.ThinkingConfig | None:
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
