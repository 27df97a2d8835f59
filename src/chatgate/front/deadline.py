"""When a chat request must end: ``server.request_timeout`` after it started, or sooner when
the server shuts down.

Every chat request (local, Gemini, relayed) runs its waits for the engine under its
``Deadline``; past it, the wait is cancelled (which stops the engine) and the request fails
with ``DeadlineExceeded`` (504): the route answers it, or ends a started stream with it as a
final error event. On SIGTERM the server calls ``Deadlines.drain``: every request in flight
then has ``server.shutdown_timeout`` seconds to finish, after which it fails the same way with
``ShuttingDown`` (503), so a stream ends with an error event instead of a cut connection, and
the process exits on time.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from typing import TypeVar

from chatgate.errors import ChatgateError, DeadlineExceeded, ShuttingDown

T = TypeVar("T")


class Deadline:
    def __init__(self, when: float | None, error: ChatgateError | None = None) -> None:
        self.when = when  # event-loop time; None: no deadline
        self._error = error
        self._timer: asyncio.Timeout | None = None

    def error(self) -> ChatgateError:
        return self._error or DeadlineExceeded("the request ran past the server's deadline (server.request_timeout)")

    async def run(self, work: Awaitable[T]) -> T:
        """``work``, cancelled at the deadline with ``error()`` raised instead."""
        if self.when is None:
            return await work
        timer = self._timer = asyncio.timeout_at(self.when)
        try:
            async with timer:
                return await work
        except TimeoutError:
            if not timer.expired():
                raise  # the work's own timeout, not this deadline
            raise self.error() from None
        finally:
            self._timer = None

    def cut(self, when: float, error: ChatgateError) -> None:
        """Bring the deadline forward to ``when`` (the wait under way included), failing with ``error``."""
        if self.when is not None and self.when <= when:
            return
        self.when, self._error = when, error
        if self._timer is not None:
            self._timer.reschedule(when)


class Deadlines:
    """The deadlines of the requests in flight (held weakly: a finished request drops out)."""

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self._live: weakref.WeakSet[Deadline] = weakref.WeakSet()
        self._drain: tuple[float, ChatgateError] | None = None

    def start(self) -> Deadline:
        """The deadline of a request starting now."""
        now = asyncio.get_running_loop().time()
        deadline = Deadline(None if self.timeout is None else now + self.timeout)
        if self._drain is not None:
            deadline.cut(*self._drain)
        self._live.add(deadline)
        return deadline

    def drain(self, grace: float) -> None:
        """The server is stopping: every request in flight, and any still to come, ends within ``grace`` seconds."""
        self._drain = (
            asyncio.get_running_loop().time() + grace,
            ShuttingDown("the server is shutting down; retry the request"),
        )
        for deadline in list(self._live):
            deadline.cut(*self._drain)
