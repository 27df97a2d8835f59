"""Raw HTTP against a live chatgate: the Vertex curl example, SSE framing, auth, errors."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from chatgate import tokens
from tests.conftest import MODEL, OPENAPI, PROJECT
from tests.live import LiveServer
from tests.openapi import validate_chunk, validate_completion

pytestmark = pytest.mark.model

STORY = {"model": MODEL, "messages": [{"role": "user", "content": "Write a story about a magic backpack."}],
         "max_tokens": 24}


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
    r = httpx.post(live.url + "/v1/projects/p/locations/global/endpoints/openapi/chat/completions",
                   headers=auth, json={**STORY, "stream": True}, timeout=60)
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
    r = httpx.post(f"{live.url}/v1beta1/projects/{PROJECT}/locations/us-central1/endpoints/local/chat/completions",
                   headers=auth, json=body, timeout=60)
    assert r.status_code == 200, r.text
    validate_completion(r.json())
    assert r.json()["model"] == MODEL


def test_unknown_endpoint_is_404(live: LiveServer, auth: dict[str, str]) -> None:
    r = httpx.post(f"{live.url}/v1/projects/{PROJECT}/locations/us-central1/endpoints/nope/chat/completions",
                   headers=auth, json=STORY)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "endpoint_not_found"


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


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer a.b.c"}])
def test_missing_or_bad_credentials_are_401(live: LiveServer, headers: dict[str, str]) -> None:
    r = httpx.post(live.url + OPENAPI + "/chat/completions", headers=headers, json=STORY)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"


def test_expired_token_is_401(live: LiveServer, state_dir) -> None:
    old = tokens.mint(tokens.load_secret(state_dir), lifetime=60, now=time.time() - 3600)
    r = httpx.post(live.url + OPENAPI + "/chat/completions", headers={"Authorization": f"Bearer {old}"}, json=STORY)
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


def test_token_signed_elsewhere_is_401(live: LiveServer) -> None:
    forged = tokens.mint(b"another secret, long enough for HS256 keys")
    r = httpx.post(live.url + OPENAPI + "/chat/completions", headers={"Authorization": f"Bearer {forged}"}, json=STORY)
    assert r.status_code == 401


def test_project_scoped_token(live: LiveServer, state_dir) -> None:
    scoped = {"Authorization": f"Bearer {tokens.mint(tokens.load_secret(state_dir), project='project-a')}"}
    a = "/v1/projects/project-a/locations/us-central1/endpoints/openapi/models"
    b = "/v1/projects/project-b/locations/us-central1/endpoints/openapi/models"
    assert httpx.get(live.url + a, headers=scoped).status_code == 200
    denied = httpx.get(live.url + b, headers=scoped)
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_error"


def test_static_keys(live: LiveServer) -> None:
    static = {"Authorization": "Bearer static-key"}
    assert httpx.get(live.url + "/v1/models", headers=static).status_code == 200
    scoped = {"Authorization": "Bearer scoped-key"}
    assert httpx.get(live.url + "/v1/projects/other/locations/l/endpoints/openapi/models", headers=scoped).status_code == 200
    assert httpx.get(live.url + OPENAPI + "/models", headers=scoped).status_code == 403
    assert httpx.get(live.url + "/v1/models", headers={"x-goog-api-key": "static-key"}).status_code == 200


# --- protocol errors --------------------------------------------------------------------------


def test_wrong_method_unknown_route_and_version(live: LiveServer, auth: dict[str, str]) -> None:
    r = httpx.get(live.url + "/v1/chat/completions", headers=auth)
    assert r.status_code == 405 and r.json()["error"]["message"]
    r = httpx.post(live.url + "/v1/nothing-here", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.post(live.url + "/v2/projects/p/locations/l/endpoints/openapi/chat/completions", headers=auth, json=STORY)
    assert r.status_code == 404


def test_wrong_content_type_is_415(live: LiveServer, auth: dict[str, str]) -> None:
    r = httpx.post(live.url + "/v1/chat/completions", headers={**auth, "Content-Type": "text/plain"},
                   content=json.dumps(STORY))
    assert r.status_code == 415
    assert "application/json" in r.json()["error"]["message"]


def test_oversized_body_is_413(live: LiveServer, auth: dict[str, str]) -> None:
    limit = live.settings.server.max_body_bytes
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (limit + 10)}]}
    r = httpx.post(live.url + "/v1/chat/completions", headers=auth, json=big)
    assert r.status_code == 413
    # ... and without a Content-Length (chunked upload) too.
    payload = json.dumps(big).encode()
    r = httpx.post(live.url + "/v1/chat/completions", headers={**auth, "Content-Type": "application/json"},
                   content=(payload[i:i + 65536] for i in range(0, len(payload), 65536)))
    assert r.status_code == 413


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
