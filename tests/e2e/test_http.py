"""Raw HTTP against a live chatgate and the real model: the Vertex curl example, SSE framing,
the routes, an engine error before the first byte, metrics. Auth, bad input and protocol
errors are tested without a model, in ``tests/front``."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import MODEL, OPENAPI, PROJECT
from tests.live import LiveServer
from tests.openapi import validate_chunk, validate_completion

pytestmark = pytest.mark.model

STORY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Write a story about a magic backpack."}],
    "max_tokens": 24,
}


def sse_events(body: str) -> list[str]:
    assert body.endswith("\n\n"), "every event ends with a blank line"
    events = body.split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events), events
    return [e.removeprefix("data: ") for e in events]


def test_vertex_curl_example(live: LiveServer, auth: dict[str, str]) -> None:
    r = httpx.post(live.url + OPENAPI + "/chat/completions", headers=auth, json=STORY, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    validate_completion(body)
    assert body["choices"][0]["message"]["content"].strip()
    assert body["choices"][0]["message"]["refusal"] is None
    assert body["choices"][0]["logprobs"] is None
    assert body["system_fingerprint"] == ""


def test_vertex_curl_example_streaming(live: LiveServer, auth: dict[str, str]) -> None:
    r = httpx.post(
        live.url + "/v1/projects/p/locations/global/endpoints/openapi/chat/completions",
        headers=auth,
        json={**STORY, "stream": True},
        timeout=60,
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        validate_chunk(chunk)
        assert chunk["object"] == "chat.completion.chunk"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks).strip()


def test_endpoint_route_without_model(live: LiveServer, auth: dict[str, str]) -> None:
    body = {"messages": STORY["messages"], "max_tokens": 5}
    r = httpx.post(
        f"{live.url}/v1beta1/projects/{PROJECT}/locations/us-central1/endpoints/local/chat/completions",
        headers=auth,
        json=body,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    validate_completion(r.json())
    assert r.json()["model"] == MODEL


def test_models_routes(live: LiveServer, auth: dict[str, str]) -> None:
    for path in ("/v1/models", OPENAPI + "/models", "/v1/projects/x/locations/global/endpoints/openapi/models"):
        r = httpx.get(live.url + path, headers=auth)
        assert r.status_code == 200
        assert r.json()["object"] == "list"
        assert MODEL in [m["id"] for m in r.json()["data"]]


def test_health_and_readiness(live: LiveServer) -> None:
    assert httpx.get(live.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(live.url + "/readyz")
    assert ready.status_code == 200 and MODEL in ready.json()["models"]


def test_prompt_longer_than_context_is_400(live: LiveServer, auth: dict[str, str]) -> None:
    long = {"model": MODEL, "messages": [{"role": "user", "content": "word " * 6000}], "max_tokens": 4}
    r = httpx.post(live.url + "/v1/chat/completions", headers=auth, json=long, timeout=60)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    r = httpx.post(live.url + "/v1/chat/completions", headers=auth, json={**long, "stream": True}, timeout=60)
    assert r.status_code == 400  # before any byte of the stream
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_metrics_count_requests_and_tokens(live: LiveServer, auth: dict[str, str]) -> None:
    httpx.post(live.url + "/v1/chat/completions", headers=auth, json={**STORY, "max_tokens": 3}, timeout=60)
    text = httpx.get(live.url + "/metrics").text
    assert 'chatgate_requests_total{route="chat_completions",status="200"}' in text
    assert f'chatgate_completion_tokens_total{{model="{MODEL}"}}' in text
    assert f'chatgate_local_queue_waiting{{model="{MODEL}"}} 0.0' in text
