"""Server-sent events from ``streamGenerateContent?alt=sse``, as Google's own SDK reads them.

``data:`` lines are joined and emitted on each blank line; lines without the prefix (an
error object Google writes into the stream raw) are collected until their braces balance
and emitted as one payload. Lines may end in ``\\n`` or ``\\r\\n``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator


async def payloads(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    pending = b""
    data: list[bytes] = []
    raw: list[bytes] = []
    depth = 0
    async for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if raw:
                raw.append(line)
                depth += line.count(b"{") - line.count(b"}")
                if depth <= 0:
                    yield b"\n".join(raw)
                    raw, depth = [], 0
            elif line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif not line.strip():
                if data:
                    yield b"\n".join(data)
                    data = []
            elif line.startswith((b":", b"event:", b"id:", b"retry:")):
                continue
            else:
                raw, depth = [line], line.count(b"{") - line.count(b"}")
                if depth <= 0:
                    yield line
                    raw, depth = [], 0
    tail = pending.rstrip(b"\r")
    if raw:
        raw.append(tail)
        yield b"\n".join(raw)
    elif tail.startswith(b"data:"):
        data.append(tail[6:] if tail.startswith(b"data: ") else tail[5:])
    elif tail.strip():
        yield tail
    if data:
        yield b"\n".join(data)
