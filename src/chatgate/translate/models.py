"""What a Gemini model id tells the translators: its generation, and what follows from it.

A value passed down to the converters, never a global: ``traits("google/gemini-3-pro")``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_GENERATION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class ModelTraits:
    # (major, minor) of a Gemini model, e.g. (2, 5) or (3, 1); None for other models.
    generation: tuple[int, int] | None = None

    @property
    def gemini3(self) -> bool:
        """Gemini 3 and later: thinking levels, part-level media resolution, no penalties."""
        return self.generation is not None and self.generation >= (3, 0)


@functools.lru_cache(maxsize=256)
def traits(model: str) -> ModelTraits:
    name = model.rsplit("/", 1)[-1]
    match = _GENERATION.match(name)
    if match is None:
        return ModelTraits()
    return ModelTraits(generation=(int(match.group(1)), int(match.group(2) or 0)))
