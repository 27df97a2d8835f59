"""A candidate's parts in OpenAI terms, for a whole answer and for a stream alike.

- text → ``content``; thought text too, as Vertex does, wrapped in ``<marker>…</marker>``
  when ``thought_tag_marker`` is set: a run of thought parts is one tagged span, across
  chunks in a stream;
- ``inlineData`` (a generated image) → an image object for ``audio`` (see ``image``);
- ``executableCode`` / ``codeExecutionResult`` → fenced blocks in ``content``;
- a thought signature on a part that is not a call → kept for ``extra_content.google``.

Function calls are left to the caller: an answer renders them whole, a stream in pieces.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from chatgate.protocols import gemini as g
from chatgate.translate import thinking


@dataclass(slots=True)
class Rendered:
    """What some parts of one candidate add up to."""

    content: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    signature: str | None = None  # the last one on a part that is not a call


class PartRenderer:
    """Renders one candidate's parts in order; holds the thought tag open between them."""

    __slots__ = ("_tags", "_in_thought")

    def __init__(self, marker: str | None) -> None:
        self._tags = thinking.tags(marker) if marker else None
        self._in_thought = False

    def add(self, part: g.Part, out: Rendered) -> None:
        """A part that is not a function call, into ``out``."""
        if part.thought_signature:
            out.signature = part.thought_signature
        if part.text is not None:
            if self._tags is not None and part.text:
                if part.thought and not self._in_thought:
                    out.content.append(self._tags[0])
                elif not part.thought and self._in_thought:
                    out.content.append(self._tags[1])
                self._in_thought = bool(part.thought)
            out.content.append(part.text)
            return
        self.close(out)
        if part.inline_data is not None:
            out.images.append(image(part.inline_data))
        elif (code := code_text(part)) is not None:
            out.content.append(code)

    def close(self, out: Rendered) -> None:
        """End an open thought: before a call, and at the end of the candidate."""
        if self._in_thought and self._tags is not None:
            out.content.append(self._tags[1])
        self._in_thought = False


def image(blob: g.Blob) -> dict[str, Any]:
    """A generated image as Vertex returns it, in ``audio`` (with the fields OpenAI's schema
    requires set to neutral values)."""
    return {
        "id": f"image-{uuid.uuid4().hex}",
        "data": blob.data,
        "expires_at": 0,
        "transcript": "",
        "extra_content": {"google": {"mime_type": blob.mime_type}},
    }


def code_text(part: g.Part) -> str | None:
    if part.executable_code is not None:
        language = (part.executable_code.language or "").lower()
        language = "" if language == "language_unspecified" else language
        return f"\n```{language}\n{part.executable_code.code or ''}\n```\n"
    if part.code_execution_result is not None:
        return f"\n```\n{part.code_execution_result.output or ''}\n```\n"
    return None
