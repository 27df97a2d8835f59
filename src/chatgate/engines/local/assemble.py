"""Generation events → the parts of a Gemini candidate.

Not streaming, a candidate's parts are its text (one part) and its whole calls
(``functionCall`` with ``id``, ``name``, ``args``), in the order written.

Streaming, each chunk carries what is new. A call is streamed the way Vertex streams
function arguments (``streamFunctionCallArguments``):

- its first part: ``functionCall{id, name, partialArgs: [...], willContinue: true}``;
- then parts ``functionCall{id, partialArgs: [...], willContinue: true}`` (no name) as the
  model writes scalar values (a string in pieces, each ``PartialArg.willContinue`` but the last);
- its last part: ``functionCall{id, partialArgs: [...], willContinue: false, args: {...}}``,
  the complete arguments included (``PartialArg`` cannot express an empty array or object).

Events of one call that arrive together are merged into one part, so a call written
between two reads of a slow client comes as a single part. A call cut short (max tokens,
cancellation) is closed with ``willContinue: false`` and no ``args`` when streaming, and
left out when not.
"""

from __future__ import annotations

from chatgate.engines.local.tools import CallArgs, CallEnd, CallEvent, CallStart
from chatgate.protocols import gemini as g


class Parts:
    def __init__(self, *, stream: bool) -> None:
        self.stream = stream
        self._parts: list[g.Part] = []
        self._names: dict[str, str] = {}
        self._calls = 0

    def text(self, text: str) -> None:
        last = self._parts[-1] if self._parts else None
        if last is not None and last.text is not None:
            last.text += text
        else:
            self._parts.append(g.Part(text=text))

    def call(self, event: CallEvent) -> None:
        if isinstance(event, CallStart):
            self._names[event.id] = event.name
            self._calls += 1
            if self.stream:
                self._parts.append(
                    g.Part(
                        function_call=g.FunctionCall(id=event.id, name=event.name, partial_args=[], will_continue=True)
                    )
                )
            return
        if not self.stream:
            if isinstance(event, CallEnd) and event.args is not None:
                self._parts.append(
                    g.Part(function_call=g.FunctionCall(id=event.id, name=self._names[event.id], args=event.args))
                )
            return
        current = self._open(event.id)
        if isinstance(event, CallArgs):
            assert current.partial_args is not None
            current.partial_args.extend(event.args)
        else:
            current.will_continue = False
            current.args = event.args

    def _open(self, call_id: str) -> g.FunctionCall:
        """The part of this chunk that continues call ``call_id`` (made if need be)."""
        last = self._parts[-1].function_call if self._parts else None
        if last is not None and last.id == call_id and last.will_continue:
            return last
        part = g.FunctionCall(id=call_id, partial_args=[], will_continue=True)
        self._parts.append(g.Part(function_call=part))
        return part

    def take(self) -> list[g.Part]:
        """Streaming: the parts since the last call. Not streaming: all the parts."""
        parts, self._parts = self._parts, []
        if not self.stream and self._calls:
            # Whitespace the model wrote before its calls is not an answer.
            parts = [p for p in parts if p.text is None or p.text.strip()]
        return parts
