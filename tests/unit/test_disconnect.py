"""``unless_disconnected``: work raced against the client leaving, watched only past a grace."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatgate.front.disconnect import ClientGone, unless_disconnected


class Client:
    """An ASGI ``receive`` after the body: it returns when ``leave()`` is called; counts calls."""

    def __init__(self) -> None:
        self.left = asyncio.Event()
        self.calls = 0

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        await self.left.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.left.set()


async def answer(seconds: float, value: str = "done") -> str:
    await asyncio.sleep(seconds)
    return value


def test_work_that_ends_within_the_grace_is_never_watched() -> None:
    async def run() -> tuple[str, int, int]:
        client = Client()
        before = len(asyncio.all_tasks())
        result = await unless_disconnected(client.receive, answer(0), after=0.05)
        await asyncio.sleep(0.1)  # past the grace: the watch was called off, not started late
        return result, client.calls, len(asyncio.all_tasks()) - before

    assert asyncio.run(run()) == ("done", 0, 0)


def test_longer_work_is_watched_and_still_answers() -> None:
    async def run() -> tuple[str, int]:
        client = Client()
        result = await unless_disconnected(client.receive, answer(0.1), after=0.01)
        return result, client.calls

    assert asyncio.run(run()) == ("done", 1)


@pytest.mark.parametrize(
    ("leaves_at", "after", "noticed_from"),
    [(0, 0.05, 0.04), (0.2, 0.01, 0.15)],
    ids=["during the grace: at its end", "later: at once"],
)
def test_a_client_that_leaves_stops_the_work(leaves_at: float, after: float, noticed_from: float) -> None:
    async def run() -> float:
        client = Client()
        asyncio.get_running_loop().call_later(leaves_at, client.leave)  # 0: its disconnect waits in receive
        started = asyncio.get_running_loop().time()
        with pytest.raises(ClientGone):
            await unless_disconnected(client.receive, answer(10), after=after)
        return asyncio.get_running_loop().time() - started

    assert noticed_from <= asyncio.run(run()) < 5


def test_a_cancellation_from_outside_is_not_a_disconnect() -> None:
    async def run() -> None:
        client = Client()
        task = asyncio.ensure_future(unless_disconnected(client.receive, answer(10), after=0.01))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
