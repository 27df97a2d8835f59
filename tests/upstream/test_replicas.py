"""Several replicas: balancing, ejection and readmission, retry, admission limits, disconnects."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.serve import free_port
from tests.upstream.servers import (
    Gateway,
    Request,
    Upstream,
    chunk,
    completion,
    openai_stub,
    respond_json,
    send_chunk,
    settings,
    sse,
    start_stream,
    wait_until,
)

CHAT = {"model": "stub-model", "messages": [{"role": "user", "content": "Hi"}]}
HOLD = {**CHAT, "metadata": {"hold": "yes"}}


async def holding_stub(request: Request, writer: asyncio.StreamWriter, release: asyncio.Event) -> None:
    """Answers at once, except requests marked ``hold``, which wait for ``release``."""
    if request.json().get("metadata", {}).get("hold"):
        await release.wait()
    await respond_json(writer, completion())


def holding_upstream() -> Upstream:
    up: Upstream
    up = Upstream(lambda request, writer: holding_stub(request, writer, up.release))  # type: ignore[arg-type]
    return up


def gateway(*upstreams: str, **endpoint: object) -> Gateway:
    return Gateway(settings({"ep": {"upstreams": list(upstreams), **endpoint}}))


def post(gw: Gateway, body: object = CHAT, **kw: object) -> httpx.Response:
    return httpx.post(gw.base("ep") + "/chat/completions", json=body, timeout=30, **kw)  # type: ignore[arg-type]


def test_dead_replica_ejected_requests_succeed_then_readmitted() -> None:
    dead_port = free_port()
    with Upstream(openai_stub) as alive, gateway(alive.url, f"http://127.0.0.1:{dead_port}", health_interval=0.1) as gw:
        endpoint = gw.endpoint("ep")
        for _ in range(6):
            assert post(gw).status_code == 200
        assert len(alive.chats) == 6
        # Ejected after `unhealthy_threshold` (3) failed connects and probes in a row.
        wait_until(lambda: not endpoint.replicas[1].healthy, "the dead replica is ejected")

        with Upstream(openai_stub, port=dead_port) as revived:
            wait_until(lambda: endpoint.replicas[1].healthy, "the revived replica is readmitted")
            for _ in range(6):
                assert post(gw).status_code == 200
            # Round robin among equally idle replicas: both take a share again.
            assert len(revived.chats) == 3
            assert len(alive.chats) == 9


def test_connection_failure_before_any_byte_is_retried_on_another_replica() -> None:
    async def slam(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()  # closed before the status line: nothing was answered

    with Upstream(slam) as flaky, Upstream(openai_stub) as good, gateway(flaky.url, good.url) as gw:
        for _ in range(4):
            assert post(gw).status_code == 200
        assert len(flaky.chats) >= 1  # some first tries went there and were retried
        assert len(good.chats) == 4


def test_all_replicas_down_is_a_clear_503() -> None:
    with gateway(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}") as gw:
        response = post(gw)
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "all 2 upstreams are down" in message
        assert "upstream #1" in message and "upstream #2" in message
        assert "127.0.0.1" not in message


def test_least_outstanding_requests() -> None:
    with holding_upstream() as a, holding_upstream() as b, gateway(a.url, b.url) as gw:
        endpoint = gw.endpoint("ep")
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(post, gw, HOLD)
            wait_until(lambda: sum(r.outstanding for r in endpoint.replicas) == 1, "one request held")
            # The gateway counts the request before the upstream has read it: wait for that too.
            wait_until(lambda: len(a.chats) + len(b.chats) == 1, "the held request reached its upstream")
            busy, idle = (a, b) if a.chats else (b, a)
            for _ in range(3):
                assert post(gw).status_code == 200
            assert len(idle.chats) == 3 and len(busy.chats) == 1
            busy.open_gate()
            assert held.result().status_code == 200
        assert [r.outstanding for r in endpoint.replicas] == [0, 0]


def test_full_queue_is_429_with_retry_after() -> None:
    with holding_upstream() as up, gateway(up.url, max_concurrency=1, queue_size=1) as gw:
        endpoint = gw.endpoint("ep")
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post, gw, HOLD)
            wait_until(lambda: endpoint.replicas[0].outstanding == 1, "the first request is in flight")
            queued = pool.submit(post, gw)  # waits for the slot
            wait_until(lambda: endpoint.admission.waiting == 1, "the second request is queued")
            refused = post(gw)
            assert refused.status_code == 429
            # One request queued ahead, one in flight: two rounds of the 1 s first estimate.
            assert refused.headers["retry-after"] == "2"
            assert refused.json()["error"]["type"] == "rate_limit_error"
            up.open_gate()
            assert first.result().status_code == 200
            assert queued.result().status_code == 200
        assert len(up.chats) == 2
        assert post(gw).status_code == 200


# --- the client going away ------------------------------------------------------------------------


def test_client_leaving_a_stream_closes_the_upstream_request() -> None:
    async def endless(request: Request, writer: asyncio.StreamWriter) -> None:
        await start_stream(writer)
        await send_chunk(writer, sse(chunk({"role": "assistant", "content": ""})))
        await asyncio.sleep(3600)  # generating...

    with Upstream(endless, watch_close=True) as up, gateway(up.url) as gw:
        with httpx.stream("POST", gw.base("ep") + "/chat/completions", json={**CHAT, "stream": True}) as response:
            assert next(response.iter_bytes()).startswith(b"data: ")
        up.closed.wait(timeout=20)
        assert up.closed.is_set(), "the upstream never saw its request closed"
        wait_until(lambda: gw.endpoint("ep").replicas[0].outstanding == 0, "the slot is freed")


def test_client_leaving_while_waiting_closes_the_upstream_request() -> None:
    arrived = threading.Event()

    async def never(request: Request, writer: asyncio.StreamWriter) -> None:
        arrived.set()
        await asyncio.sleep(3600)

    with Upstream(never, watch_close=True) as up, gateway(up.url) as gw:
        with ThreadPoolExecutor(1) as pool:
            with httpx.Client() as client:
                pending = pool.submit(client.post, gw.base("ep") + "/chat/completions", json=CHAT)
                assert arrived.wait(timeout=20)
                client.close()  # the client gives up: its connection goes away
                try:
                    pending.result()
                except httpx.HTTPError:
                    pass
        up.closed.wait(timeout=20)
        assert up.closed.is_set(), "the upstream never saw its request closed"
        wait_until(lambda: gw.endpoint("ep").replicas[0].outstanding == 0, "the slot is freed")
