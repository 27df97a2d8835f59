"""Who may call: 401 without valid credentials, 403 outside a credential's projects, for
API keys and signed tokens alike, on chat and model routes; nothing reaches the engine."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
from starlette.applications import Starlette

from chatgate import tokens
from tests.front.conftest import PROJECT, ROUTE, asgi_client, body, token
from tests.front.fake import MODEL, FakeEngine

OTHER = "/v1/projects/other/locations/us-central1/endpoints/openapi"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic c3RhdGljLWtleQ=="},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer a.b.c"},
        {"x-goog-api-key": "nope"},
    ],
    ids=["none", "unknown key", "basic scheme", "empty bearer", "malformed token", "unknown goog key"],
)
async def test_missing_or_bad_credentials_are_401(
    http: httpx.AsyncClient, engine: FakeEngine, headers: dict[str, str]
) -> None:
    for method, path in (("POST", "/chat/completions"), ("GET", "/models")):
        r = await http.request(method, ROUTE + path, headers=headers, json=body() if method == "POST" else None)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["type"] == "authentication_error"
    assert engine.calls == []


async def test_expired_and_foreign_tokens_are_401(http: httpx.AsyncClient, state_path: Path) -> None:
    expired = token(state_path, lifetime=60, now=time.time() - 3600)
    r = await http.post(ROUTE + "/chat/completions", headers={"Authorization": f"Bearer {expired}"}, json=body())
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    forged = tokens.mint(b"another secret, long enough for HS256 keys")
    r = await http.post(ROUTE + "/chat/completions", headers={"Authorization": f"Bearer {forged}"}, json=body())
    assert r.status_code == 401


async def test_project_scoped_token(http: httpx.AsyncClient, state_path: Path, engine: FakeEngine) -> None:
    scoped = {"Authorization": f"Bearer {token(state_path, project=PROJECT)}"}
    assert (await http.post(ROUTE + "/chat/completions", headers=scoped, json=body())).status_code == 200
    denied = await http.post(OTHER + "/chat/completions", headers=scoped, json=body())
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    assert len(engine.calls) == 1


async def test_static_and_scoped_keys(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    assert (await http.get("/v1/models", headers={"Authorization": "Bearer static-key"})).status_code == 200
    assert (await http.get("/v1/models", headers={"x-goog-api-key": "static-key"})).status_code == 200
    scoped = {"Authorization": "Bearer scoped-key"}
    assert (await http.post(OTHER + "/chat/completions", headers=scoped, json=body())).status_code == 200
    r = await http.post(ROUTE + "/chat/completions", headers=scoped, json=body())
    assert r.status_code == 403
    assert len(engine.calls) == 1


async def test_sdk_sees_typed_auth_errors(app: Starlette) -> None:
    for key, route, error in (
        ("nope", ROUTE, openai.AuthenticationError),
        ("scoped-key", ROUTE, openai.PermissionDeniedError),
    ):
        async with openai.AsyncOpenAI(
            base_url="http://chatgate" + route, api_key=key, max_retries=0, http_client=asgi_client(app)
        ) as sdk:
            with pytest.raises(error):
                await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


async def test_health_and_metrics_need_no_credentials(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and MODEL in ready.json()["models"]
    assert (await http.get("/metrics")).status_code == 200
