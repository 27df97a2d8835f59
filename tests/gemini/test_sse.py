"""The reader of Google's SSE stream: the same payloads however the bytes are cut."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatgate.engines.gemini.sse import payloads


async def _read(pieces: list[bytes]) -> list[bytes]:
    async def source() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    return [p async for p in payloads(source())]


STREAM = (
    b'data: {"a": 1}\r\n\r\n'
    b": a comment\n"
    b"event: message\nid: 7\nretry: 10\n"
    b'data:{"b": 2}\n\n'
    b'data: {"c":\ndata: 3}\n\n'
    b'[{\n  "error": {\n    "code": 429,\n    "status": "RESOURCE_EXHAUSTED"\n  }\n}\n]\n'
    b'data: {"d": 4}'
)  # the last event without its blank line
EXPECTED = [
    b'{"a": 1}',
    b'{"b": 2}',
    b'{"c":\n3}',
    b'[{\n  "error": {\n    "code": 429,\n    "status": "RESOURCE_EXHAUSTED"\n  }\n}',
    b"]",
    b'{"d": 4}',
]


async def test_whole_stream() -> None:
    assert await _read([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
async def test_any_cut_gives_the_same_payloads(size: int) -> None:
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert await _read(pieces) == EXPECTED


async def test_every_single_cut_point() -> None:
    for cut in range(1, len(STREAM)):
        assert await _read([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


async def test_a_long_line_in_many_pieces() -> None:
    data = b"x" * 200_000
    stream = b'data: {"inline": "' + data + b'"}\r\n\r\n'
    pieces = [stream[i : i + 1000] for i in range(0, len(stream), 1000)]
    assert await _read(pieces) == [b'{"inline": "' + data + b'"}']


async def test_raw_error_object_at_the_end_without_newline() -> None:
    assert await _read([b'{"error": {"code": 500,', b' "message": "x"}}']) == [
        b'{"error": {"code": 500, "message": "x"}}'
    ]
    assert await _read([b'{"error": {\n', b'"code": 500']) == [b'{"error": {\n"code": 500']
