"""``RedisLimiter``: the counters in Redis, shared by every replica that names the same store.

Every change is one Lua script run atomically by Redis (no read-modify-write from here), with
Redis's own clock (``TIME``), so replicas with skewed clocks still agree. The arithmetic is
``base.py``'s, in Lua. Revoked tokens are a hash of token id to expiry.

Redis being gone is ``StoreUnavailable``; after a failure the limiter does not try again for
``RETRY_AFTER_FAILURE`` seconds (requests do not each wait for a dead store), then reconnects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chatgate.limits.base import WINDOW, Bucket, Decision, Level, StoreUnavailable

RETRY_AFTER_FAILURE = 1.0

_NOW = """
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local window = %d
""" % (WINDOW * 1000)

# KEYS: the buckets. ARGV: now (ms, or -1 for Redis's clock), lease, lease ms, then for each
# bucket its kind ('r' rate, 'c' concurrent), limit and cost. Returns {0} when admitted, else
# {index of the refusing bucket (1-based), ms to wait}.
ACQUIRE = (
    _NOW
    + """
local lease, lease_ms = ARGV[2], tonumber(ARGV[3])
local tats = {}
for i, key in ipairs(KEYS) do
  local kind, limit, cost = ARGV[1 + 3 * i], tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
  if kind == 'r' then
    local step = window / limit
    local tat = tonumber(redis.call('GET', key) or now)
    if tat < now then tat = now end
    local over = tat + math.min(cost, limit) * step - now - window
    if over > 1e-6 then return {i, tostring(over)} end
    tats[i] = tat + cost * step
  else
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= limit then return {i, '1000'} end
  end
end
for i, key in ipairs(KEYS) do
  if tats[i] then
    redis.call('SET', key, tostring(tats[i]), 'PX', math.ceil(tats[i] - now) + 1000)
  else
    redis.call('ZADD', key, now + lease_ms, lease)
    redis.call('PEXPIRE', key, math.ceil(lease_ms))
  end
end
return {0, '0'}
"""
)

# KEYS: rate buckets, then concurrent ones. ARGV: now, delta (units more, or fewer), lease,
# the number of rate buckets, then each rate bucket's limit.
FINISH = (
    _NOW
    + """
local delta, lease, rates = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
for i = rates + 1, #KEYS do
  redis.call('ZREM', KEYS[i], lease)
end
for i = 1, rates do
  local key, limit = KEYS[i], tonumber(ARGV[4 + i])
  local tat = tonumber(redis.call('GET', key) or '-1')
  if tat < now and delta > 0 then tat = now end
  if tat >= now then
    tat = math.max(tat + delta * window / limit, now)
    redis.call('SET', key, tostring(tat), 'PX', math.ceil(tat - now) + 1000)
  end
end
return 0
"""
)

# KEYS: buckets. ARGV: now, then each bucket's kind and limit. Returns {remaining, reset ms}
# per bucket, as strings.
LEVELS = (
    _NOW
    + """
local out = {}
for i, key in ipairs(KEYS) do
  local kind, limit = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  if kind == 'r' then
    local tat = tonumber(redis.call('GET', key) or now)
    local ahead = math.max(tat - now, 0)
    local remaining = math.floor((window - ahead) / (window / limit) + 1e-9)
    out[#out + 1] = tostring(math.max(0, math.min(limit, remaining)))
    out[#out + 1] = tostring(ahead)
  else
    local held = redis.call('ZCOUNT', key, '(' .. now, '+inf')
    out[#out + 1] = tostring(math.max(0, limit - held))
    out[#out + 1] = '0'
  end
end
return out
"""
)


class RedisLimiter:
    """``clock`` (seconds) replaces Redis's clock: for tests on a fake clock only."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "chatgate",
        timeout: float = 0.5,
        lease_seconds: float = 900.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._prefix = prefix
        self._lease_ms = lease_seconds * 1000
        self._clock = clock
        self._acquire = self._client.register_script(ACQUIRE)
        self._finish = self._client.register_script(FINISH)
        self._levels = self._client.register_script(LEVELS)
        self._down_until = 0.0

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    def _now(self) -> float:
        return -1 if self._clock is None else self._clock() * 1000

    async def _run(self, call: Callable[[], Any]) -> Any:
        if time.monotonic() < self._down_until:
            raise StoreUnavailable("redis was unreachable less than a second ago")
        try:
            return await call()
        except (RedisError, OSError) as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def acquire(self, buckets: Sequence[Bucket], lease: str) -> Decision:
        args: list[Any] = [self._now(), lease, self._lease_ms]
        for bucket in buckets:
            args += ["r" if bucket.kind == "rate" else "c", bucket.limit, bucket.cost]
        keys = [self._key(b.key) for b in buckets]
        index, wait = await self._run(lambda: self._acquire(keys=keys, args=args))
        if index == 0:
            return Decision(True)
        return Decision(False, buckets[index - 1], float(wait) / 1000)

    async def finish(self, rates: Sequence[Bucket], delta: int, slots: Sequence[Bucket], lease: str) -> None:
        if not delta:
            rates = ()
        if not rates and not slots:
            return
        keys = [self._key(b.key) for b in (*rates, *slots)]
        args: list[Any] = [self._now(), delta, lease, len(rates), *(b.limit for b in rates)]
        await self._run(lambda: self._finish(keys=keys, args=args))

    async def levels(self, buckets: Sequence[Bucket]) -> list[Level]:
        if not buckets:
            return []
        args: list[Any] = [self._now()]
        for bucket in buckets:
            args += ["r" if bucket.kind == "rate" else "c", bucket.limit]
        keys = [self._key(b.key) for b in buckets]
        flat = await self._run(lambda: self._levels(keys=keys, args=args))
        return [Level(int(flat[i]), float(flat[i + 1]) / 1000) for i in range(0, len(flat), 2)]

    async def revoke(self, token_id: str, until: float) -> None:
        key = self._key("revoked")

        async def write() -> None:
            await self._client.hset(key, token_id, f"{until:.0f}")
            now = time.time()
            stale = [tid for tid, exp in (await self._client.hgetall(key)).items() if float(exp) <= now]
            if stale:
                await self._client.hdel(key, *stale)

        await self._run(write)

    async def revoked(self) -> frozenset[str]:
        entries = await self._run(lambda: self._client.hgetall(self._key("revoked")))
        now = time.time()
        return frozenset(tid for tid, exp in entries.items() if float(exp) > now)

    async def aclose(self) -> None:
        await self._client.aclose()
