"""Admission: the concurrency limit, the bounded queue, and the Retry-After estimate."""

from __future__ import annotations

import asyncio

import pytest

from chatgate.engines.admission import Admission
from chatgate.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_limit_then_queue_then_429() -> None:
    admission = Admission("endpoint 'e'", limit=2, queue_size=1, hold_estimate=3.0, clock=Clock())
    first, second = await admission.acquire(), await admission.acquire()
    assert admission.active == 2 and admission.waiting == 0
    queued = asyncio.create_task(admission.acquire())
    await asyncio.sleep(0)
    assert admission.waiting == 1 and not queued.done()
    with pytest.raises(RateLimited) as refused:
        await admission.acquire()
    assert refused.value.status == 429
    assert "endpoint 'e'" in refused.value.message
    # One waiting for two slots: the newcomer is in the first round after the running ones.
    assert refused.value.headers["Retry-After"] == "3"
    admission.release(first)
    third = await queued
    assert admission.active == 2 and admission.waiting == 0
    admission.release(second)
    admission.release(third)
    assert admission.active == 0


async def test_queue_size_zero_refuses_as_soon_as_every_slot_is_taken() -> None:
    admission = Admission("x", limit=1, queue_size=0)
    held = await admission.acquire()
    with pytest.raises(RateLimited):
        await admission.acquire()
    admission.release(held)
    admission.release(await admission.acquire())


async def test_waiters_are_served_in_arrival_order() -> None:
    admission = Admission("x", limit=1, queue_size=3)
    held = await admission.acquire()
    order: list[int] = []

    async def wait(n: int) -> None:
        admitted = await admission.acquire()
        order.append(n)
        admission.release(admitted)

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    admission.release(held)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


async def test_retry_after_follows_the_moving_average_of_hold_times() -> None:
    clock = Clock()
    admission = Admission("x", limit=1, queue_size=0, hold_estimate=1.0, clock=clock)
    for _ in range(30):  # many 10 s holds: the estimate converges on 10 s
        admitted = await admission.acquire()
        clock.now += 10.0
        admission.release(admitted)
    assert admission.hold_seconds == pytest.approx(10.0, abs=0.1)
    held = await admission.acquire()
    with pytest.raises(RateLimited) as refused:
        await admission.acquire()
    assert refused.value.headers["Retry-After"] == "10"
    admission.release(held)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    admission = Admission("x", limit=1, queue_size=1)
    held = await admission.acquire()
    waiter = asyncio.create_task(admission.acquire())
    await asyncio.sleep(0)
    assert admission.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert admission.waiting == 0
    admission.release(held)
    admission.release(await admission.acquire())
    assert admission.active == 0
