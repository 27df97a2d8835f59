"""``MemoryLimiter``: the counters in this process (one replica, nothing to install).

Revocations live in a file beside the token secret when one is given (``chatgate token
--revoke`` on the same host writes it; the server reads it again when it changes), else in
this process only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from chatgate.limits.base import Bucket, Decision, Level, rate_adjust, rate_level, rate_take


class MemoryLimiter:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        lease_seconds: float = 900.0,
        revocations: Path | None = None,
    ) -> None:
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._tats: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}  # bucket key -> lease -> expiry
        self._file = revocations
        self._revoked: dict[str, float] = {}  # token id -> Unix time it expires anyway
        self._file_seen: tuple[int, int] | None = None

    async def acquire(self, buckets: Sequence[Bucket], lease: str) -> Decision:
        now = self._clock()
        taken: list[tuple[str, float]] = []
        for bucket in buckets:
            if bucket.kind == "rate":
                tat, wait = rate_take(self._tats.get(bucket.key), now, bucket.limit, bucket.cost)
                if wait:
                    return Decision(False, bucket, wait)
                taken.append((bucket.key, tat))
            else:
                held = self._live_leases(bucket.key, now)
                if len(held) >= bucket.limit:
                    return Decision(False, bucket, 1.0)
        # Every bucket admits: only now is anything charged (all or nothing).
        self._tats.update(taken)
        for bucket in buckets:
            if bucket.kind == "concurrent":
                self._leases.setdefault(bucket.key, {})[lease] = now + self._lease_seconds
        return Decision(True)

    def _live_leases(self, key: str, now: float) -> dict[str, float]:
        held = self._leases.get(key, {})
        for name in [name for name, expiry in held.items() if expiry <= now]:
            del held[name]
        return held

    async def finish(self, rates: Sequence[Bucket], delta: int, slots: Sequence[Bucket], lease: str) -> None:
        now = self._clock()
        for bucket in rates:
            tat = rate_adjust(self._tats.get(bucket.key), now, bucket.limit, delta)
            if tat is not None:
                self._tats[bucket.key] = tat
        for bucket in slots:
            self._leases.get(bucket.key, {}).pop(lease, None)

    async def levels(self, buckets: Sequence[Bucket]) -> list[Level]:
        now = self._clock()
        out = []
        for bucket in buckets:
            if bucket.kind == "rate":
                out.append(rate_level(self._tats.get(bucket.key), now, bucket.limit))
            else:
                out.append(Level(max(0, bucket.limit - len(self._live_leases(bucket.key, now))), 0.0))
        return out

    async def revoke(self, token_id: str, until: float) -> None:
        self._revoked[token_id] = until
        if self._file is not None:
            self._file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(f"{token_id} {until:.0f}\n")

    async def revoked(self) -> frozenset[str]:
        self._read_file()
        now = time.time()
        return frozenset(token_id for token_id, until in self._revoked.items() if until > now)

    def _read_file(self) -> None:
        if self._file is None:
            return
        try:
            info = self._file.stat()
        except FileNotFoundError:
            return
        seen = (info.st_mtime_ns, info.st_size)
        if seen == self._file_seen:
            return
        self._file_seen = seen
        for line in self._file.read_text(encoding="utf-8").splitlines():
            token_id, _, until = line.partition(" ")
            if token_id and until.isdigit():
                self._revoked[token_id] = float(until)

    async def aclose(self) -> None:
        pass
