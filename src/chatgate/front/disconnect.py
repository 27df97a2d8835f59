"""Racing work against the client going away.

After the request body has been read, the next ASGI ``receive()`` returns only when the
client disconnects. ``unless_disconnected`` awaits some work and that message together;
whichever comes first wins, and a disconnect cancels the work, so whatever it started
(local generation, an upstream request) stops with it.

The watch starts ``WATCH_AFTER`` into the work, not at once: most answers that come from
elsewhere (a relayed request, Gemini) are there sooner and never pay for a watcher task, and
a client that left in the meantime is noticed then (its disconnect waits in ``receive``).
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
# Seconds of work before the client is watched (see above): far below what a person or a
# client's timeout notices, far above an answer that comes at once.
WATCH_AFTER = 0.05


async def wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(
    receive: Receive,
    work: Awaitable[T],
    *,
    discard: Callable[[T], Awaitable[None]] | None = None,
    after: float = WATCH_AFTER,
) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ``ClientGone``.
    ``discard`` closes a result that arrived while the work was being cancelled.

    The work runs in the calling task; from ``after`` seconds on, one watcher task cancels it
    on a disconnect. (Two tasks raced with ``asyncio.wait`` cost a task, a future and four
    callbacks more per request, on the hot path of every answer.)"""
    current = asyncio.current_task()
    assert current is not None
    loop = asyncio.get_running_loop()
    gone = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal gone
        try:
            await wait_disconnect(receive)
        except Exception:
            pass  # a failing receive counts as a disconnect
        gone = True
        current.cancel()

    def start() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(after, start)
    try:
        result = await work
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGone from None
        raise  # cancelled from outside: a deadline, the server stopping
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
    if gone:  # the work caught the cancellation and finished anyway
        current.uncancel()
        if discard is not None:
            await discard(result)
        raise ClientGone
    return result
