"""The limiter's arithmetic on a fake clock, the same tests on both backends: memory, and
Redis (a real ``redis-server``, its scripts given the fake clock instead of ``TIME``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatgate.limits import Bucket, Limiter, MemoryLimiter
from tests.quota.redis_server import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter(clock=clock, lease_seconds=30)
        return
    from chatgate.limits.redis import RedisLimiter

    server: RedisServer = request.getfixturevalue("redis_server")
    shared = RedisLimiter(server.url, prefix="test", clock=clock, lease_seconds=30)
    try:
        yield shared
    finally:
        await shared.aclose()


def rate(key: str, limit: int, cost: int = 1) -> Bucket:
    return Bucket(key, "rate", limit, cost)


async def test_a_minute_of_requests_at_once_then_one_per_interval(limiter: Limiter, clock: Clock) -> None:
    rpm = rate("p:rpm", 6)  # one every 10 s
    assert all([(await limiter.acquire([rpm], "x")).allowed for _ in range(6)])
    refused = await limiter.acquire([rpm], "x")
    assert not refused.allowed and refused.refused == rpm
    assert refused.retry_after == pytest.approx(10.0)
    clock.advance(4)
    assert (await limiter.acquire([rpm], "x")).retry_after == pytest.approx(6.0)
    clock.advance(6)
    assert (await limiter.acquire([rpm], "x")).allowed
    assert not (await limiter.acquire([rpm], "x")).allowed
    clock.advance(60)  # a full minute idle refills the whole bucket, not more
    assert [(await limiter.acquire([rpm], "x")).allowed for _ in range(7)] == [True] * 6 + [False]


async def test_all_or_nothing(limiter: Limiter) -> None:
    wide, narrow = rate("wide", 5), rate("narrow", 1)
    assert (await limiter.acquire([wide, narrow], "x")).allowed
    refused = await limiter.acquire([wide, narrow], "x")
    assert refused.refused == narrow
    # The wide bucket was not charged for the refused request.
    assert [level.remaining for level in await limiter.levels([wide, narrow])] == [4, 0]


async def test_token_costs_and_wait(limiter: Limiter, clock: Clock) -> None:
    tpm = rate("tpm", 100)
    assert (await limiter.acquire([rate("tpm", 100, 60)], "x")).allowed
    refused = await limiter.acquire([rate("tpm", 100, 60)], "x")
    assert not refused.allowed and refused.retry_after == pytest.approx(12.0)  # 20 of 60 tokens short, at 100/min
    assert (await limiter.levels([tpm]))[0].remaining == 40
    clock.advance(12)
    assert (await limiter.acquire([rate("tpm", 100, 60)], "x")).allowed


async def test_a_cost_above_the_limit_passes_only_a_full_bucket_and_leaves_a_debt(
    limiter: Limiter, clock: Clock
) -> None:
    assert (await limiter.acquire([rate("tpm", 100, 150)], "x")).allowed
    level = (await limiter.levels([rate("tpm", 100)]))[0]
    assert level.remaining == 0 and level.reset == pytest.approx(90.0)
    refused = await limiter.acquire([rate("tpm", 100, 1)], "x")
    assert refused.retry_after == pytest.approx(30.6)
    assert not (await limiter.acquire([rate("tpm", 100, 150)], "x")).allowed


async def test_settling_gives_back_or_charges_more(limiter: Limiter, clock: Clock) -> None:
    tpm = rate("tpm", 100)
    assert (await limiter.acquire([rate("tpm", 100, 50)], "x")).allowed
    await limiter.finish([tpm], -40, [], "x")  # used 10 of the 50 estimated
    assert (await limiter.levels([tpm]))[0].remaining == 90
    await limiter.finish([tpm], 100, [], "x")  # a debt: more than the bucket holds, refused nothing
    assert (await limiter.levels([tpm]))[0].remaining == 0
    clock.advance(60)
    await limiter.finish([tpm], -50, [], "x")  # giving back to a full bucket adds nothing
    assert (await limiter.levels([tpm]))[0].remaining == 100
    await limiter.finish([rate("fresh", 100)], 30, [], "x")  # a debt on a bucket never used
    assert (await limiter.levels([rate("fresh", 100)]))[0].remaining == 70


async def test_concurrency_leases_release_and_expire(limiter: Limiter, clock: Clock) -> None:
    slots = Bucket("conc", "concurrent", 2)
    assert (await limiter.acquire([slots], "a")).allowed
    assert (await limiter.acquire([slots], "b")).allowed
    refused = await limiter.acquire([slots], "c")
    assert not refused.allowed and refused.refused == slots and refused.retry_after == pytest.approx(1.0)
    assert (await limiter.levels([slots]))[0].remaining == 0
    await limiter.finish([], 0, [slots], "a")
    assert (await limiter.acquire([slots], "c")).allowed
    clock.advance(31)  # holders that never released (a dead replica's) expire with their lease
    assert (await limiter.levels([slots]))[0].remaining == 2
    assert (await limiter.acquire([slots], "d")).allowed


async def test_finishing_settles_and_releases_at_once(limiter: Limiter) -> None:
    tpm, slots = rate("tpm", 100), Bucket("conc", "concurrent", 1)
    assert (await limiter.acquire([rate("tpm", 100, 50), slots], "a")).allowed
    await limiter.finish([tpm], -45, [slots], "a")
    assert [level.remaining for level in await limiter.levels([tpm, slots])] == [95, 1]


async def test_a_refused_concurrency_slot_charges_no_rate(limiter: Limiter) -> None:
    rpm, slots = rate("rpm", 10), Bucket("conc", "concurrent", 1)
    assert (await limiter.acquire([rpm, slots], "a")).allowed
    assert not (await limiter.acquire([rpm, slots], "b")).allowed
    assert (await limiter.levels([rpm]))[0].remaining == 9


async def test_revocations_last_until_the_token_would_expire(limiter: Limiter) -> None:
    await limiter.revoke("live", time.time() + 60)
    await limiter.revoke("gone", time.time() - 1)
    assert await limiter.revoked() == frozenset({"live"})


async def test_revocations_in_a_file_reach_another_limiter(tmp_path: Path) -> None:
    writer, reader = MemoryLimiter(revocations=tmp_path / "r"), MemoryLimiter(revocations=tmp_path / "r")
    assert await reader.revoked() == frozenset()
    await writer.revoke("t1", time.time() + 60)
    assert await reader.revoked() == frozenset({"t1"})
