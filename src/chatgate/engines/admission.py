"""Admission: how many requests an engine serves at once, and how many may wait.

One class for every engine (local models, self-deployed endpoints, Gemini). ``limit``
requests hold a slot at once; up to ``queue_size`` more wait for one, in arrival order;
beyond that a request is refused at once with a 429 (``RateLimited``) whose ``Retry-After``
estimates when a slot frees up: a moving average of how long a slot is held, times the
rounds of the queue ahead of the caller.

    admission = Admission("model 'm'", limit=2, queue_size=16)
    admitted = await admission.acquire()   # raises RateLimited when the queue is full
    try:
        ...
    finally:
        admission.release(admitted)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from chatgate.errors import RateLimited

# Weight of the newest hold time in the moving average.
_SMOOTHING = 0.2


class Admission:
    def __init__(
        self,
        what: str,
        limit: int,
        queue_size: int,
        *,
        hold_estimate: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``what`` names the resource in the 429 message (``model 'x'``, ``endpoint 'y'``);
        ``hold_estimate`` is the seconds a slot is assumed held before any was released."""
        if limit < 1 or queue_size < 0:
            raise ValueError("limit must be at least 1 and queue_size at least 0")
        self.what = what
        self.limit = limit
        self.queue_size = queue_size
        self.hold_seconds = hold_estimate
        self._clock = clock
        self._slots = asyncio.Semaphore(limit)
        self.active = 0
        self.waiting = 0

    def retry_after(self) -> float:
        """Seconds until a newcomer would likely get a slot: the queue ahead, in rounds."""
        return self.hold_seconds * (self.waiting // self.limit + 1)

    async def acquire(self) -> float:
        """Wait for a slot; the admission time, to hand back to ``release``."""
        if self._slots.locked():
            if self.waiting >= self.queue_size:
                raise RateLimited(
                    f"{self.what} is at capacity and its queue is full; retry later", retry_after=self.retry_after()
                )
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.active += 1
        return self._clock()

    def release(self, admitted: float) -> None:
        """Free the slot taken at ``admitted`` and learn how long it was held."""
        self.active -= 1
        held = self._clock() - admitted
        self.hold_seconds += _SMOOTHING * (held - self.hold_seconds)
        self._slots.release()
