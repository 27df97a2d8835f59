"""cachedContents for Gemini models: passed through to (a fake) Google with chatgate's
credentials, names rewritten between Google's project and the client's, each chatgate project
seeing only the caches it created; generating with one names it as Google knows it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from chatgate.front.app import build_app
from tests.asgi import running
from tests.caches.conftest import AUTH, PROJECT, _check
from tests.front.conftest import asgi_client, settings
from tests.front.fake import FakeEngine
from tests.gemini import discovery
from tests.gemini.fake import FakeGemini

CACHES = f"/v1/projects/{PROJECT}/locations/us-central1/cachedContents"
GEMINI = f"projects/{PROJECT}/locations/us-central1/publishers/google/models/gemini-2.5-flash"
GOOGLE_CACHES = "/v1/projects/gproj/locations/us-central1/cachedContents"
CHAT = f"/v1/projects/{PROJECT}/locations/us-central1/endpoints/openapi/chat/completions"
ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
    "usageMetadata": {
        "promptTokenCount": 30,
        "candidatesTokenCount": 1,
        "totalTokenCount": 31,
        "cachedContentTokenCount": 25,
    },
}


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(google: FakeGemini) -> Iterator[FakeGemini]:
    google.reset()
    yield google
    version = {"/v1/": "v1", "/v1beta1/": "v1beta1"}
    for seen in google.seen:
        if seen.method in ("POST", "PATCH") and "/cachedContents" in seen.path:
            v = next((v for p, v in version.items() if seen.path.startswith(p)), None)
            if v is None:
                continue  # the Gemini API: Vertex's discovery document does not describe it
            schema = (
                "GoogleCloudAiplatformV1CachedContent" if v == "v1" else "GoogleCloudAiplatformV1beta1CachedContent"
            )
            discovery.validate(seen.body, schema, v)


@pytest.fixture
def gemini_settings(fake: FakeGemini) -> dict[str, Any]:
    return {"project": "gproj", "access_token": "tok", "base_url": fake.url, "retry_backoff": 0.0}


@pytest.fixture
async def app(tmp_path: Path, gemini_settings: dict[str, Any]) -> AsyncIterator[Starlette]:
    application = build_app(settings(tmp_path, gemini=gemini_settings), local=FakeEngine())
    async with running(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://chatgate", headers=AUTH, event_hooks={"response": [_check]}
    ) as client:
        yield client


BODY = {
    "model": GEMINI,
    "displayName": "docs",
    "contents": [{"role": "user", "parts": [{"text": "A long document."}]}],
    "ttl": "300s",
}


async def test_create_passes_through_with_names_rewritten(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    response = await http.post(CACHES, json=BODY)
    assert response.status_code == 200, response.text
    created = response.json()
    sent = fake.seen[-1]
    assert (sent.method, sent.path) == ("POST", GOOGLE_CACHES)
    assert sent.headers["authorization"] == "Bearer tok"
    assert sent.body["model"] == "projects/gproj/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    assert sent.body["contents"] == BODY["contents"] and sent.body["ttl"] == "300s"
    cache_id = created["name"].rpartition("/")[2]
    assert created["name"] == f"projects/{PROJECT}/locations/us-central1/cachedContents/{cache_id}"
    assert created["model"] == GEMINI
    assert created["usageMetadata"]["totalTokenCount"] > 0


async def test_get_patch_list_delete(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    name = (await http.post(CACHES, json=BODY)).json()["name"]
    cache_id = name.rpartition("/")[2]
    got = await http.get(f"/v1/{name}")
    assert got.status_code == 200 and got.json()["name"] == name
    assert fake.seen[-1].path == f"{GOOGLE_CACHES}/{cache_id}"
    patched = await http.patch(f"/v1/{name}", json={"ttl": "7200s"})
    assert patched.status_code == 200 and fake.seen[-1].query == "updateMask=ttl"
    assert fake.seen[-1].body == {"ttl": "7200s"}
    listed = (await http.get(CACHES)).json()
    assert [c["name"] for c in listed["cachedContents"]] == [name]
    assert (await http.delete(f"/v1/{name}")).json() == {}
    assert fake.seen[-1].method == "DELETE"
    assert (await http.get(f"/v1/{name}")).status_code == 404


async def test_another_project_sees_none_of_them(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    name = (await http.post(CACHES, json=BODY)).json()["name"]
    cache_id = name.rpartition("/")[2]
    scoped = {"Authorization": "Bearer scoped-key"}
    other = "/v1/projects/other/locations/us-central1/cachedContents"
    calls = len(fake.seen)
    assert (await http.get(f"{other}/{cache_id}", headers=scoped)).status_code == 404
    assert (await http.delete(f"{other}/{cache_id}", headers=scoped)).status_code == 404
    assert len(fake.seen) == calls  # never asked Google
    listed = (await http.get(other, headers=scoped)).json()
    assert listed.get("cachedContents", []) == []


async def test_google_errors_keep_their_status(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    fake.reply(400, {"error": {"code": 400, "message": "Cached content is too small.", "status": "INVALID_ARGUMENT"}})
    response = await http.post(CACHES, json=BODY)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].endswith("Cached content is too small.")


async def test_generating_with_the_cache_names_googles_cache(
    app: Starlette, http: httpx.AsyncClient, fake: FakeGemini
) -> None:
    name = (await http.post(CACHES, json=BODY)).json()["name"]
    google_name = next(iter(fake.caches))
    fake.reply(200, ANSWER)
    async with asgi_client(app, base_url="http://chatgate", headers=AUTH) as client:
        response = await client.post(
            CHAT,
            json={
                "model": "google/gemini-2.5-flash",
                "messages": [{"role": "user", "content": "Summarize."}],
                "extra_body": {"google": {"cached_content": name}},
            },
        )
    assert response.status_code == 200, response.text
    assert fake.seen[-1].body["cachedContent"] == google_name
    assert response.json()["usage"]["prompt_tokens_details"] == {"cached_tokens": 25}


@pytest.fixture
def allow_list(gemini_settings: dict[str, Any]) -> None:
    gemini_settings["allowed_cached_contents"] = ["projects/gproj/locations/us-central1/cachedContents/9"]


@pytest.mark.usefixtures("allow_list")
async def test_the_allow_list_still_rules(app: Starlette, http: httpx.AsyncClient, fake: FakeGemini) -> None:
    name = (await http.post(CACHES, json=BODY)).json()["name"]  # id 1000000001: outside the list
    async with asgi_client(app, base_url="http://chatgate", headers=AUTH) as client:
        response = await client.post(
            CHAT,
            json={
                "model": "google/gemini-2.5-flash",
                "messages": [{"role": "user", "content": "Summarize."}],
                "extra_body": {"google": {"cached_content": name}},
            },
        )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "resource_not_allowed"


@pytest.fixture
def gemini_api(gemini_settings: dict[str, Any]) -> None:
    gemini_settings.update(mode="gemini-api", api_key="AIza-test", access_token=None, project=None)


@pytest.mark.usefixtures("gemini_api")
async def test_gemini_api_mode(http: httpx.AsyncClient, fake: FakeGemini) -> None:
    response = await http.post("/v1beta/cachedContents", json={**BODY, "model": "models/gemini-2.5-flash"})
    assert response.status_code == 200, response.text
    sent = fake.seen[-1]
    assert sent.path == "/v1beta/cachedContents" and sent.headers["x-goog-api-key"] == "AIza-test"
    assert sent.body["model"] == "models/gemini-2.5-flash"
    created = response.json()
    assert created["name"].startswith("cachedContents/") and created["model"] == "models/gemini-2.5-flash"
