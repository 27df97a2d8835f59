"""Racing work against the client going away.

After the request body has been read, the next ASGI ``receive()`` returns only when the
client disconnects. ``unless_disconnected`` awaits some work and that message together;
whichever comes first wins, and a disconnect cancels the work, so whatever it started
(local generation, an upstream request) stops with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before the work was done."""


# nginx's "client closed request": what the access log shows when the client left first.
CLIENT_CLOSED = 499


async def wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(
    receive: Receive, work: Awaitable[T], *, discard: Callable[[T], Awaitable[None]] | None = None
) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ``ClientGone``.

    ``discard`` closes a result that arrived while the work was being cancelled."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if watcher.done() and not watcher.cancelled():
            watcher.exception()  # a failing receive counts as a disconnect
        if not task.done():
            task.cancel()
            try:
                result = await task
            except asyncio.CancelledError:
                pass
            except Exception:
                pass  # the client is gone; nobody to tell
            else:
                if discard is not None:
                    await discard(result)
    if task.cancelled():
        raise ClientGone
    return task.result()
