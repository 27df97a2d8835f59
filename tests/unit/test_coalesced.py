"""``sse.coalesced``: events made together go out as one piece, in order, and nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatgate.front.sse import AHEAD, coalesced


async def test_events_made_together_are_joined_and_waits_split_them() -> None:
    gate = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"
        await gate.wait()
        yield b"c"

    out = coalesced(events())
    assert await anext(out) == b"ab"
    gate.set()
    assert [p async for p in out] == [b"c"]


async def test_a_long_burst_is_cut_at_the_bound_and_loses_nothing() -> None:
    async def events() -> AsyncIterator[bytes]:
        for i in range(3 * AHEAD):
            yield b"%d," % i

    pieces = [p async for p in coalesced(events())]
    assert b"".join(pieces) == b"".join(b"%d," % i for i in range(3 * AHEAD))
    assert 1 < len(pieces) < 3 * AHEAD


async def test_a_failure_comes_after_the_events_before_it() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b"a"
        raise ValueError("broken")

    out = coalesced(events())
    assert await anext(out) == b"a"
    with pytest.raises(ValueError, match="broken"):
        await anext(out)


async def test_closing_early_closes_the_events() -> None:
    closed = asyncio.Event()
    never = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            await never.wait()
            yield b"b"
        finally:
            closed.set()

    out = coalesced(events())
    assert await anext(out) == b"a"
    await out.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()
