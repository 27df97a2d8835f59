"""``serving.Coalesced``: what the HTTP protocol writes in one event-loop step leaves in one send."""

from __future__ import annotations

import asyncio
from typing import Any

from chatgate.serving import Coalesced


class Recording:
    """A transport that records each write (one write is one ``send`` on a real socket)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def test_a_head_and_a_body_written_in_one_step_leave_in_one_write() -> None:
    inner = Recording()
    transport = Coalesced(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert inner.writes == []  # held until the step ends
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_writes_in_later_steps_are_not_held_back() -> None:
    inner = Recording()
    transport = Coalesced(inner, asyncio.get_running_loop())
    for piece in (b"data: 1\n\n", b"data: 2\n\n"):
        transport.write(piece)
        await asyncio.sleep(0)
    assert inner.writes == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    inner = Recording()
    transport = Coalesced(inner, asyncio.get_running_loop())
    transport.write(b"last")
    transport.close()
    assert inner.writes == [b"last"] and inner.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert inner.writes == [b"last"]

    inner = Recording()
    transport = Coalesced(inner, asyncio.get_running_loop())
    transport.write(b"dropped")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == [] and inner.aborted


async def test_empty_writes_schedule_nothing_and_the_rest_is_the_transports() -> None:
    inner = Recording()
    transport = Coalesced(inner, asyncio.get_running_loop())
    transport.write(b"")
    await asyncio.sleep(0)
    assert inner.writes == []
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    assert not transport.is_closing()
