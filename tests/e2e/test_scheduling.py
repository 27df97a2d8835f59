"""The local engine under pressure: disconnects free it, a full queue answers 429."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from chatgate.engines.local.engine import LocalEngine, LocalModel
from tests.conftest import MODEL, make_settings
from tests.live import LiveServer

pytestmark = pytest.mark.model

LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Tell me a very long story."}],
    "max_tokens": 3000,
    "temperature": 0,
    "stream": True,
}  # runs to max_tokens at temperature 0


def local_model(server: LiveServer) -> LocalModel:
    """The model as the engine the test server was built with holds it."""
    assert isinstance(server.local, LocalEngine)
    return server.local.model(MODEL)


def busy(server: LiveServer) -> bool:
    """Whether the model is generating, as ``/metrics`` shows it."""
    text = httpx.get(server.url + "/metrics").text
    line = next(line for line in text.splitlines() if line.startswith(f'chatgate_local_busy{{model="{MODEL}"}}'))
    return float(line.rsplit(" ", 1)[1]) != 0.0


def wait_idle(server: LiveServer, limit: float = 60.0) -> None:
    """Wait until the engine has no running generation (a liveness bound, not a timing check)."""
    deadline = time.monotonic() + limit
    while busy(server):
        assert time.monotonic() < deadline, "the engine never became idle"
        time.sleep(0.05)


def counts(server: LiveServer) -> tuple[int, int]:
    """Candidates the model ended cancelled, and tokens it generated, so far."""
    counted = local_model(server).counts
    return counted.ended.get("CANCELLED", 0), counted.tokens


def test_client_disconnect_stops_streaming_generation(live: LiveServer, auth: dict[str, str]) -> None:
    wait_idle(live)
    cancelled, tokens = counts(live)
    with httpx.stream("POST", live.url + "/v1/chat/completions", headers=auth, json=LONG, timeout=60) as r:
        assert r.status_code == 200
        seen = 0
        for line in r.iter_lines():
            if line.startswith("data: {"):
                seen += 1
            if seen >= 3:
                break
    wait_idle(live)
    assert counts(live)[0] == cancelled + 1
    assert counts(live)[1] - tokens < LONG["max_tokens"]
    # The engine takes the next request at once.
    r = httpx.post(
        live.url + "/v1/chat/completions", headers=auth, json={**LONG, "stream": False, "max_tokens": 3}, timeout=60
    )
    assert r.status_code == 200


def test_client_disconnect_stops_non_streaming_generation(live: LiveServer, auth: dict[str, str]) -> None:
    wait_idle(live)
    cancelled, tokens = counts(live)
    body = {**LONG, "stream": False}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(live.url + "/v1/chat/completions", headers=auth, json=body, timeout=1.0)
    wait_idle(live)
    assert counts(live)[0] == cancelled + 1
    assert counts(live)[1] - tokens < LONG["max_tokens"]


def test_parallel_generations_then_a_full_queue_answers_429(tmp_path: Path) -> None:
    """Two contexts generate at once; with no queue, a third request is refused."""
    settings = make_settings(tmp_path, auth={"enabled": False}, local={"parallel": 2, "queue_size": 0})
    with LiveServer(settings) as server:
        url = server.url + "/v1/chat/completions"
        release = threading.Event()
        started = [threading.Event(), threading.Event()]

        def hold_a_context(i: int) -> None:
            # Keep the stream open (a context busy) until the third request was answered.
            with httpx.stream("POST", url, json=LONG, timeout=60) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        started[i].set()
                    if release.is_set():
                        break

        holders = [threading.Thread(target=hold_a_context, args=(i,)) for i in range(2)]
        for holder in holders:
            holder.start()
        # Both streams produce tokens at the same time: neither waited for the other, and
        # their tokens were decoded together, in the same batches.
        assert all(event.wait(60) for event in started)
        model = local_model(server)
        deadline = time.monotonic() + 60  # a liveness bound: the streams keep generating
        while model.scheduler.stats.widest < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert model.active == 2 and model.scheduler.stats.widest == 2
        r = httpx.post(url, json={**LONG, "stream": False, "max_tokens": 2})
        release.set()
        for holder in holders:
            holder.join()
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        wait_idle(server)
        assert httpx.post(url, json={**LONG, "stream": False, "max_tokens": 2}).status_code == 200


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_one_request_after_another_never_finds_the_slot_taken(tmp_path: Path, stream: bool) -> None:
    """With one slot and no queue, a client that sends its next request as soon as the last
    answer arrived gets it served: the slot is free before the answer's end goes out."""
    settings = make_settings(tmp_path, auth={"enabled": False}, local={"parallel": 1, "queue_size": 0})
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        statuses = []
        for _ in range(30):
            body = {**LONG, "stream": stream, "max_tokens": 1}
            if stream:
                with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    events = [line for line in r.iter_lines() if line.startswith("data: ")]
                    statuses.append(r.status_code)
                assert events[-1] == "data: [DONE]"
            else:
                statuses.append(client.post("/v1/chat/completions", json=body).status_code)
        assert statuses == [200] * 30


def test_queued_requests_are_served_in_turn(live: LiveServer, auth: dict[str, str]) -> None:
    results: list[int] = []

    def ask() -> None:
        r = httpx.post(
            live.url + "/v1/chat/completions",
            headers=auth,
            timeout=120,
            json={**LONG, "stream": False, "max_tokens": 8},
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4


def test_error_event_shape_is_openai(live: LiveServer) -> None:
    # Not an engine failure, but the framing a failed stream ends with (front/sse.py).
    from chatgate.errors import UpstreamUnavailable
    from chatgate.front.sse import encode_error

    frame = encode_error(UpstreamUnavailable("gone"))
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert json.loads(frame[6:])["error"]["message"] == "gone"
