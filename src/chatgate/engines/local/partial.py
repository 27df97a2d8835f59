"""A function call's arguments, as the model writes them → Gemini ``PartialArg`` values.

The grammar guarantees that the text is one valid JSON value, so this incremental reader
does not validate: it tracks where it is (the JSON path of the value being written) and
reports each scalar as soon as it is known, the way Vertex streams arguments with
``streamFunctionCallArguments``:

- a string value is reported piece by piece as it grows (``willContinue: true`` on every
  piece but the last);
- numbers, booleans and null once they are complete.

``PartialArg`` carries scalars only, so an empty array or object (``"tags": []``) cannot be
expressed; the complete arguments travel on the call's closing chunk (``args``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatgate.protocols import gemini as g

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_NUMBER_CHARS = frozenset("0123456789+-.eE")


def json_path(path: list[str | int]) -> str:
    out = ["$"]
    for segment in path:
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif _SIMPLE_KEY.match(segment):
            out.append(f".{segment}")
        elif "'" not in segment:
            out.append(f"['{segment}']")
        else:
            out.append(f'["{segment}"]')
    return "".join(out)


@dataclass(slots=True)
class _Container:
    array: bool
    key: str | None = None  # the member being written (objects)
    index: int = -1  # the element being written (arrays)


@dataclass(slots=True)
class ArgsReader:
    """Feed JSON text in pieces; get ``PartialArg`` values; ``done`` once the value is whole."""

    done: bool = False
    used: int = 0  # characters of the last ``feed`` that belong to the value
    _stack: list[_Container] = field(default_factory=list)
    _state: str = "value"  # value | key | colon | after | string | number | literal
    _string_is_key: bool = False
    _string: list[str] = field(default_factory=list)  # decoded, not yet reported
    _escape: str | None = None  # an escape sequence in progress, without its backslash
    _high_surrogate: int | None = None
    _string_reported: bool = False
    _scalar: str = ""

    def feed(self, text: str) -> list[g.PartialArg]:
        out: list[g.PartialArg] = []
        self.used = 0
        for char in text:
            if self.done:
                break
            self._char(char, out)
            self.used += 1
        if self._state == "string" and not self._string_is_key and self._string:
            # Report what the string holds so far; more of it will come.
            out.append(g.PartialArg(json_path=self._path(), string_value="".join(self._string), will_continue=True))
            self._string.clear()
            self._string_reported = True
        return out

    def finish(self) -> list[g.PartialArg]:
        """End of input: a top-level number is only known complete here."""
        out: list[g.PartialArg] = []
        if self._state == "number":
            self._end_number(out)
        return out

    # --- the state machine ---------------------------------------------------------------

    def _path(self) -> str:
        segments: list[str | int] = []
        for container in self._stack:
            segments.append(container.index if container.array else container.key or "")
        return json_path(segments)

    def _char(self, c: str, out: list[g.PartialArg]) -> None:
        state = self._state
        if state == "string":
            self._string_char(c, out)
        elif state == "number":
            if c in _NUMBER_CHARS:
                self._scalar += c
            else:
                self._end_number(out)
                self._char(c, out)
        elif state == "literal":
            self._scalar += c
            if self._scalar in ("true", "false", "null"):
                value = self._scalar
                if value == "null":
                    out.append(g.PartialArg(json_path=self._path(), null_value="NULL_VALUE"))
                else:
                    out.append(g.PartialArg(json_path=self._path(), bool_value=value == "true"))
                self._end_value()
        elif c in " \t\r\n":
            return
        elif state == "value":
            self._value_start(c, out)
        elif state == "key":
            if c == '"':
                self._start_string(key=True)
            elif c == "}":  # an empty object
                self._close()
        elif state == "colon":
            if c == ":":
                self._state = "value"
        elif state == "after":
            top = self._stack[-1]
            if c == ",":
                if top.array:
                    top.index += 1
                    self._state = "value"
                else:
                    self._state = "key"
            elif c in "]}":
                self._close()

    def _value_start(self, c: str, out: list[g.PartialArg]) -> None:
        if c == "{":
            self._stack.append(_Container(array=False))
            self._state = "key"
        elif c == "[":
            self._stack.append(_Container(array=True, index=0))
            self._state = "value"
        elif c == "]" and self._stack and self._stack[-1].array:  # an empty array
            self._close()
        elif c == '"':
            self._start_string(key=False)
        elif c in "tfn":
            self._scalar, self._state = c, "literal"
        else:
            self._scalar, self._state = c, "number"

    def _start_string(self, *, key: bool) -> None:
        self._state = "string"
        self._string_is_key = key
        self._string_reported = False
        self._string.clear()

    def _string_char(self, c: str, out: list[g.PartialArg]) -> None:
        if self._escape is not None:
            self._escape += c
            if self._escape[0] != "u":
                self._add_char(_ESCAPES.get(self._escape, self._escape))
                self._escape = None
            elif len(self._escape) == 5:
                self._add_code_unit(int(self._escape[1:], 16))
                self._escape = None
        elif c == "\\":
            self._escape = ""
        elif c == '"':
            self._end_string(out)
        else:
            self._add_char(c)

    def _add_code_unit(self, unit: int) -> None:
        if 0xD800 <= unit < 0xDC00:
            self._high_surrogate = unit
            return
        if 0xDC00 <= unit < 0xE000 and self._high_surrogate is not None:
            unit = 0x10000 + ((self._high_surrogate - 0xD800) << 10) + (unit - 0xDC00)
        self._high_surrogate = None
        self._add_char(chr(unit))

    def _add_char(self, c: str) -> None:
        self._string.append(c)

    def _end_string(self, out: list[g.PartialArg]) -> None:
        text = "".join(self._string)
        self._string.clear()
        if self._string_is_key:
            self._stack[-1].key = text
            self._state = "colon"
            return
        if self._string_reported:
            out.append(g.PartialArg(json_path=self._path(), string_value=text, will_continue=False))
        else:
            out.append(g.PartialArg(json_path=self._path(), string_value=text))
        self._end_value()

    def _end_number(self, out: list[g.PartialArg]) -> None:
        text, self._scalar = self._scalar, ""
        number = float(text)
        out.append(g.PartialArg(json_path=self._path(), number_value=number))
        self._end_value()

    def _end_value(self) -> None:
        self._scalar = ""
        if self._stack:
            self._state = "after"
        else:
            self.done = True

    def _close(self) -> None:
        self._stack.pop()
        self._end_value()
