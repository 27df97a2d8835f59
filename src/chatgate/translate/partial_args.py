"""Gemini's streamed function arguments (``partialArgs``) → JSON text fragments.

With ``streamFunctionCallArguments``, Gemini sends a call's arguments as a series of
``PartialArg`` values, each naming its place by a JSON path (``$.location``,
``$.stops[1].city``); a string value may come in pieces (``willContinue``). OpenAI clients
want the arguments as fragments of one JSON text that they concatenate, so ``ArgsWriter``
writes that text as the values arrive: ``{"location":"Bos`` → ``ton"`` → ``,"unit":"c"`` → ``}``.
Every fragment is escaped by ``json.dumps``, so the concatenation is always valid JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from chatgate.errors import UpstreamError
from chatgate.protocols import gemini as g

_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\[\"((?:[^\"\\]|\\.)*)\"\]")

Segment = str | int


def parse_path(path: str) -> list[Segment]:
    if not path.startswith("$"):
        raise UpstreamError(f"Gemini sent a partial argument with an invalid JSON path: {path!r}")
    segments: list[Segment] = []
    position = 1
    while position < len(path):
        match = _SEGMENT.match(path, position)
        if match is None:
            raise UpstreamError(f"Gemini sent a partial argument with an invalid JSON path: {path!r}")
        key, index, single, double = match.groups()
        if index is not None:
            segments.append(int(index))
        else:
            segments.append(key if key is not None else (single if single is not None else double))
        position = match.end()
    return segments


@dataclass(slots=True)
class _Frame:
    segment: Segment | None
    array: bool
    members: int = 0


@dataclass(slots=True)
class ArgsWriter:
    text: str = ""  # everything written so far
    _stack: list[_Frame] = field(default_factory=list)
    _open_string: list[Segment] | None = None
    _closed: bool = False
    _top_keys: set[str] = field(default_factory=set)  # top-level members written so far

    def feed(self, args: list[g.PartialArg]) -> str:
        out: list[str] = []
        for arg in args:
            self._one(arg, out)
        fragment = "".join(out)
        self.text += fragment
        return fragment

    def close(self, args: dict[str, object] | None = None) -> str:
        """The fragment that completes the JSON text ("{}" if nothing came).

        ``args``, the complete arguments when the last part carries them, fills in the
        top-level members no partial value could express (an empty list or object)."""
        if self._closed:
            return ""
        out: list[str] = []
        self._start(out)
        self._end_string(out)
        while len(self._stack) > 1:
            out.append("]" if self._stack.pop().array else "}")
        for key, value in (args or {}).items():
            if key not in self._top_keys:
                self._member(key, out)
                out.append(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        while self._stack:
            out.append("]" if self._stack.pop().array else "}")
        self._closed = True
        fragment = "".join(out)
        self.text += fragment
        return fragment

    def _start(self, out: list[str]) -> None:
        if not self._stack and not self.text and not out:
            self._stack.append(_Frame(None, array=False))
            out.append("{")

    def _end_string(self, out: list[str]) -> None:
        if self._open_string is not None:
            out.append('"')
            self._open_string = None

    def _one(self, arg: g.PartialArg, out: list[str]) -> None:
        if self._closed:
            return
        self._start(out)
        path = parse_path(arg.json_path)
        if not path:
            return
        if self._open_string is not None and self._open_string == path:
            out.append(json.dumps(arg.string_value or "", ensure_ascii=False)[1:-1])
            if not arg.will_continue:
                self._end_string(out)
            return
        self._end_string(out)
        parent, leaf = path[:-1], path[-1]
        # Close the containers the new value is not inside, then open the missing ones.
        current = [f.segment for f in self._stack[1:]]
        common = 0
        while common < min(len(current), len(parent)) and current[common] == parent[common]:
            common += 1
        while len(self._stack) - 1 > common:
            out.append("]" if self._stack.pop().array else "}")
        for depth in range(common, len(parent)):
            child = path[depth + 1]
            self._member(parent[depth], out)
            array = isinstance(child, int)
            out.append("[" if array else "{")
            self._stack.append(_Frame(parent[depth], array=array))
        self._member(leaf, out)
        out.append(_value(arg))
        if arg.string_value is not None and arg.will_continue:
            out.pop()
            out.append(json.dumps(arg.string_value, ensure_ascii=False)[:-1])
            self._open_string = path

    def _member(self, segment: Segment, out: list[str]) -> None:
        frame = self._stack[-1]
        if frame.members:
            out.append(",")
        frame.members += 1
        if len(self._stack) == 1:
            self._top_keys.add(str(segment))
        if not frame.array:
            out.append(json.dumps(str(segment), ensure_ascii=False) + ":")


def _value(arg: g.PartialArg) -> str:
    if arg.string_value is not None:
        return json.dumps(arg.string_value, ensure_ascii=False)
    if arg.number_value is not None:
        number = arg.number_value
        return json.dumps(int(number) if float(number).is_integer() else number)
    if arg.bool_value is not None:
        return "true" if arg.bool_value else "false"
    return "null"
