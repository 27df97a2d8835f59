"""Server-sent events from ``streamGenerateContent?alt=sse``, as Google's own SDK reads them.

``data:`` lines are joined and emitted on each blank line; lines without the prefix (an
error object Google writes into the stream raw) are collected until their braces balance
and emitted as one payload. Lines may end in ``\\n`` or ``\\r\\n``.

Pieces are appended to one ``bytearray`` and each line is cut out of it once: bytes are
searched for a newline only once (a line split over many pieces, such as a large inline
image, costs linear time, not quadratic), and consumed lines are dropped from the front of
the buffer in one step per piece, never by rebuilding it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

_SKIPPED = (b":", b"event:", b"id:", b"retry:")


class _Events:
    """The state between lines: the ``data:`` lines of the current event, or a raw object."""

    __slots__ = ("data", "depth", "raw")

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.raw: list[bytes] = []
        self.depth = 0

    def line(self, line: bytes) -> bytes | None:
        """Take one line (without its end); a payload when it completes one."""
        if self.raw:
            self.raw.append(line)
            self.depth += line.count(b"{") - line.count(b"}")
            return self._raw_done()
        if line.startswith(b"data:"):
            self.data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            return None
        if not line.strip():
            return self.flush()
        if line.startswith(_SKIPPED):
            return None
        self.raw, self.depth = [line], line.count(b"{") - line.count(b"}")
        return self._raw_done()

    def _raw_done(self) -> bytes | None:
        if self.depth > 0:
            return None
        payload = b"\n".join(self.raw)
        self.raw, self.depth = [], 0
        return payload

    def flush(self) -> bytes | None:
        """The pending event's payload, if any."""
        data = self.data
        if not data:
            return None
        self.data = []
        return data[0] if len(data) == 1 else b"\n".join(data)

    def end(self, tail: bytes) -> list[bytes]:
        """The payloads left when the stream ends with ``tail`` (an unterminated last line)."""
        out: list[bytes] = []
        if self.raw:
            self.raw.append(tail)
            out.append(b"\n".join(self.raw))
        elif tail.startswith(b"data:"):
            self.data.append(tail[6:] if tail.startswith(b"data: ") else tail[5:])
        elif tail.strip():
            out.append(tail)
        if (last := self.flush()) is not None:
            out.append(last)
        return out


async def payloads(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    buffer = bytearray()
    searched = 0  # the buffer's first `searched` bytes hold no newline
    events = _Events()
    async for chunk in chunks:
        buffer += chunk
        end = buffer.find(b"\n", searched)
        if end < 0:
            searched = len(buffer)
            continue
        start = 0
        while end >= 0:
            stop = end - 1 if end > start and buffer[end - 1] == 13 else end  # a "\r\n" ending
            if events.raw:
                payload = events.line(bytes(buffer[start:stop]))
            elif buffer.startswith(b"data: ", start):
                events.data.append(bytes(buffer[start + 6 : stop]))  # the common lines, no call
                payload = None
            elif stop == start:
                payload = events.flush()
            else:
                payload = events.line(bytes(buffer[start:stop]))
            if payload is not None:
                yield payload
            start = end + 1
            end = buffer.find(b"\n", start)
        del buffer[:start]
        searched = len(buffer)
    for payload in events.end(bytes(buffer).rstrip(b"\r")):
        yield payload
