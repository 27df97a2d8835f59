"""Server-sent events, the one place that writes ``data:`` frames.

Each event is one ``data:`` line of compact JSON (which never contains a newline) and a
blank line; a good stream ends with ``data: [DONE]``, a failed one with a final
``data: {"error": {...}}`` event, after which the connection closes.

``coalesced`` joins the events that are ready together into one write: Google often sends
several events in one packet, and a socket write per event costs more than making it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from chatgate.errors import ChatgateError
from chatgate.protocols.openai import encoder

DONE = b"data: [DONE]\n\n"
MEDIA_TYPE = "text/event-stream"
# Proxies (nginx) must not buffer a stream; clients must not cache it.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode_event(obj: Any) -> bytes:
    return b"data: " + encoder.encode(obj) + b"\n\n"


def encode_error(error: ChatgateError) -> bytes:
    return encode_event(error.to_dict())


# Events made ahead of the client before the producer waits (the stream's backpressure).
AHEAD = 64
_END = object()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


async def coalesced(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``events``, each batch of those made without waiting in between joined into one piece.

    ``events`` runs in a task of its own and hands its events over a bounded queue; each
    time this side wakes, it takes every event queued (at most ``AHEAD``). When events come
    one at a time, each goes out alone, as before. Closing this closes ``events``."""
    queue: asyncio.Queue[object] = asyncio.Queue(AHEAD)

    async def produce() -> None:
        try:
            async for event in events:
                await queue.put(event)
        except Exception as exc:
            await queue.put(_Failed(exc))
        else:
            await queue.put(_END)
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    producer = asyncio.create_task(produce())
    try:
        while True:
            batch: list[bytes] = []
            item = await queue.get()
            while True:
                if item is _END or isinstance(item, _Failed):
                    if batch:
                        yield b"".join(batch)
                    if isinstance(item, _Failed):
                        raise item.error
                    return
                batch.append(item)  # type: ignore[arg-type]
                if queue.empty():
                    break
                item = queue.get_nowait()
            yield batch[0] if len(batch) == 1 else b"".join(batch)
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
