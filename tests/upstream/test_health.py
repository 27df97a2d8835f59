"""Health rules that never take a healthy upstream down (Envoy's): each rule on its own,
then the keep-alive race against a real uvicorn upstream."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import uvicorn

from chatgate.config import EndpointSettings
from chatgate.engines.upstream import UpstreamEndpoint
from tests.serve import free_port
from tests.upstream.servers import (
    Gateway,
    Request,
    Upstream,
    openai_stub,
    respond_json,
    settings,
    wait_until,
)

CHAT = b'{"model": "stub-model", "messages": [{"role": "user", "content": "Hi"}]}'


def endpoint(*urls: str, **options: Any) -> UpstreamEndpoint:
    # No start(): probes run only when a test calls them, so each step is deterministic.
    return UpstreamEndpoint("ep", EndpointSettings(upstreams=list(urls), **options))


async def relay(ep: UpstreamEndpoint) -> int:
    answer = await ep.open(CHAT)
    try:
        await answer.read()
        return answer.status
    finally:
        await answer.aclose()


async def test_a_probe_failing_on_a_reused_connection_is_retried_on_a_fresh_one() -> None:
    served: dict[int, int] = {}  # requests per connection

    async def drops_reused(request: Request, writer: Any) -> None:
        n = served[id(writer)] = served.get(id(writer), 0) + 1
        if n > 1:
            writer.transport.abort()  # as a server closing an idle connection at that moment
            return
        await openai_stub(request, writer)

    with Upstream(drops_reused, handle_gets=True) as up:
        ep = endpoint(up.url, unhealthy_threshold=1)
        try:
            replica = ep.replicas[0]
            assert await ep.probe(replica)  # opens a connection, left in the pool
            assert await ep.probe(replica)  # the pooled one is dropped: retried on a new one
            assert replica.healthy and replica.failures == 0
            assert len(up.requests) == 3
        finally:
            await ep.aclose()


async def test_a_request_failing_on_a_reused_connection_is_retried_on_a_fresh_one() -> None:
    served: dict[int, int] = {}

    async def drops_reused(request: Request, writer: Any) -> None:
        n = served[id(writer)] = served.get(id(writer), 0) + 1
        if n > 1:
            writer.transport.abort()  # closed before the status line: nothing was answered
            return
        await openai_stub(request, writer)

    with Upstream(drops_reused) as up:
        ep = endpoint(up.url, unhealthy_threshold=1)
        try:
            for _ in range(3):
                assert await relay(ep) == 200
            replica = ep.replicas[0]
            assert replica.healthy and replica.failures == 0  # a stale connection is no failure
            # The first; the second twice (its pooled connection dropped, then a fresh one);
            # the third on a new pooled connection, as the dropped one left the pool.
            assert len(up.chats) == 4
        finally:
            await ep.aclose()


async def test_ejected_only_after_consecutive_failures_and_back_after_one_success() -> None:
    sick = threading.Event()

    async def health(request: Request, writer: Any) -> None:
        if sick.is_set():
            await respond_json(writer, {"error": "overloaded"}, status=503)
        else:
            await openai_stub(request, writer)

    with Upstream(health, handle_gets=True) as up:
        ep = endpoint(up.url, unhealthy_threshold=3)
        try:
            replica = ep.replicas[0]
            sick.set()
            assert not await ep.probe(replica)
            assert not await ep.probe(replica)
            assert replica.healthy and replica.failures == 2
            sick.clear()
            assert await ep.probe(replica)  # a success resets the count
            sick.set()
            for _ in range(2):
                await ep.probe(replica)
            assert replica.healthy
            await ep.probe(replica)
            assert not replica.healthy and "HTTP 503" in (replica.last_error or "")
            sick.clear()
            assert await ep.probe(replica)
            assert replica.healthy and replica.failures == 0
        finally:
            await ep.aclose()


async def test_requests_that_cannot_connect_count_as_failures() -> None:
    dead_url = f"http://127.0.0.1:{free_port()}"
    with Upstream(openai_stub) as alive:
        ep = endpoint(alive.url, dead_url, unhealthy_threshold=3)
        try:
            dead = ep.replicas[1]
            for _ in range(20):
                assert await relay(ep) == 200  # each one that tried the dead replica was retried
                if not dead.healthy:
                    break
            assert not dead.healthy and dead.failures == 3
            assert alive.requests and all(r.method == "POST" for r in alive.requests)  # no probe ran
            for _ in range(4):
                assert await relay(ep) == 200
            assert dead.failures == 3  # out of rotation: not tried again
        finally:
            await ep.aclose()


async def test_when_every_replica_is_down_they_are_tried_anyway() -> None:
    async def chats_only(request: Request, writer: Any) -> None:
        if request.method == "GET":
            await respond_json(writer, {"error": "probe path broken"}, status=500)
        else:
            await openai_stub(request, writer)

    with Upstream(chats_only, handle_gets=True) as a, Upstream(chats_only, handle_gets=True) as b:
        ep = endpoint(a.url, b.url, unhealthy_threshold=1)
        try:
            for replica in ep.replicas:
                assert not await ep.probe(replica)
            assert not any(r.healthy for r in ep.replicas)
            assert await relay(ep) == 200  # panic mode: served all the same
            assert sum(r.healthy for r in ep.replicas) == 1  # and the success readmits its replica
        finally:
            await ep.aclose()


# --- the keep-alive race ---------------------------------------------------------------------------


async def _tiny_openai(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = (
        b'{"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}'
        if scope["method"] == "GET"
        else b'{"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": []}'
    )
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class UvicornUpstream:
    """A real uvicorn server (vLLM's), closing idle connections after ``keep_alive`` seconds."""

    def __init__(self, keep_alive: float) -> None:
        config = uvicorn.Config(
            _tiny_openai, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_keep_alive=keep_alive
        )  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, "uvicorn upstream started")
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_keep_alive_equal_to_the_probe_interval_never_ejects() -> None:
    """The upstream closes idle connections exactly as often as chatgate probes it (uvicorn's
    default 5 s against the default 5 s interval; a quarter second here), and requests come
    after idle gaps around that time, so probes and requests keep meeting connections it is
    closing. One counted failure would eject it (threshold 1), and a request refused for it
    would not be a 200."""
    interval = 0.25
    with UvicornUpstream(keep_alive=interval) as url:
        config = settings({"ep": {"upstreams": [url], "health_interval": interval, "unhealthy_threshold": 1}})
        with Gateway(config) as gw, httpx.Client(timeout=30) as client:
            replica = gw.endpoint("ep").replicas[0]
            statuses = []
            worst = 0
            for step in range(24):
                # Idle gaps sweeping across the keep-alive timeout, a millisecond apart.
                time.sleep(interval - 0.02 + step * 0.001)
                statuses.append(
                    client.post(
                        gw.base("ep") + "/chat/completions", content=CHAT, headers={"content-type": "application/json"}
                    ).status_code
                )
                worst = max(worst, replica.failures)
            assert statuses == [200] * 24
            assert replica.healthy and worst == 0
