"""The limiter's interface and the arithmetic both backends follow.

A *rate* bucket holds up to ``limit`` units and refills at ``limit`` per minute: a burst of the
whole minute's quota is admitted at once, then a steady ``limit / 60`` per second. It is kept
as GCRA does it, one number per bucket: the *theoretical arrival time* (TAT), the moment the
bucket will be full again. Taking ``cost`` units moves it ``cost * interval`` later (interval =
60 s / limit); a request is refused when that would put it more than a minute ahead of now,
and the refusal's ``retry_after`` is by how much. A cost above the whole limit is taken as the
whole limit, so a request larger than a minute's quota passes only on a full bucket.

A *concurrent* bucket is a set of leases (one per request in flight), each with an expiry so
that a replica that dies holding one does not hold it forever.

Token costs are estimates at admission; ``finish`` moves the TAT by the difference between
the real usage and the estimate, without refusing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Kind = Literal["rate", "concurrent"]
WINDOW = 60.0  # seconds: limits are per minute


class StoreUnavailable(Exception):
    """The shared store (Redis) could not be reached or answered an error."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit a request is charged to: ``key`` names the counter (a project's tokens per
    minute, say), ``cost`` is this request's charge (1 for requests and concurrency)."""

    key: str
    kind: Kind
    limit: int
    cost: int = 1


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    refused: Bucket | None = None  # the first bucket that refused
    retry_after: float = 0.0  # seconds


@dataclass(frozen=True, slots=True)
class Level:
    """What is left in a bucket: units that could be taken now, and seconds until full."""

    remaining: int
    reset: float


def interval(limit: int) -> float:
    return WINDOW / limit


def rate_take(tat: float | None, now: float, limit: int, cost: int) -> tuple[float, float]:
    """(new TAT, 0) when ``cost`` fits in the bucket, else (old TAT, seconds to wait)."""
    start = now if tat is None or tat < now else tat
    new = start + min(cost, limit) * interval(limit)
    over = new - now - WINDOW
    if over > 1e-9:
        return (tat if tat is not None else now), over
    return start + cost * interval(limit), 0.0


def rate_adjust(tat: float | None, now: float, limit: int, delta: int) -> float | None:
    """The TAT after charging ``delta`` more units (fewer, if negative), never refusing."""
    if tat is None or tat < now:
        if delta <= 0:
            return tat
        tat = now
    return max(tat + delta * interval(limit), now)


def rate_level(tat: float | None, now: float, limit: int) -> Level:
    ahead = 0.0 if tat is None or tat < now else tat - now
    remaining = int((WINDOW - ahead) / interval(limit) + 1e-9)
    return Level(remaining=max(0, min(limit, remaining)), reset=ahead)


class Limiter(Protocol):
    async def acquire(self, buckets: Sequence[Bucket], lease: str) -> Decision:
        """Charge every bucket, or none if one refuses. ``lease`` names this request's slot in
        its concurrent buckets. Raises ``StoreUnavailable``."""
        ...

    async def finish(self, rates: Sequence[Bucket], delta: int, slots: Sequence[Bucket], lease: str) -> None:
        """A request is over: charge the rate buckets ``rates`` ``delta`` more units (negative:
        give back; never refused), and free ``lease``'s place in the concurrent ``slots``."""
        ...

    async def levels(self, buckets: Sequence[Bucket]) -> list[Level]:
        """What is left in each bucket, charging nothing."""
        ...

    async def revoke(self, token_id: str, until: float) -> None:
        """Refuse the token ``token_id`` from now until ``until`` (a Unix time)."""
        ...

    async def revoked(self) -> frozenset[str]:
        """The ids of the tokens revoked and not yet expired."""
        ...

    async def aclose(self) -> None: ...
