"""Context caches over the fake engine, in this process: the app with a clock the test turns,
every cachedContents answer checked against Vertex's discovery document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from chatgate.front.app import build_app
from tests.asgi import running
from tests.front.conftest import KEY, asgi_client, settings
from tests.front.fake import MODEL, FakeEngine
from tests.gemini import discovery

PROJECT = "my-project"
CACHES = f"/v1/projects/{PROJECT}/locations/us-central1/cachedContents"
MODEL_RESOURCE = f"projects/{PROJECT}/locations/us-central1/publishers/fake/models/model-a"
AUTH = {"Authorization": f"Bearer {KEY}"}
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def google_shaped(response: httpx.Response) -> None:
    """Fail unless a cachedContents answer is Vertex's CachedContent, its list, an empty
    object (delete) or Google's error."""
    body = response.json()
    if response.status_code >= 400:
        error = body["error"]
        assert set(error) == {"code", "message", "status"}, body
        assert error["code"] == response.status_code
        return
    version = "v1" if response.request.url.path.startswith("/v1/") else "v1beta1"
    prefix = "GoogleCloudAiplatformV1" if version == "v1" else "GoogleCloudAiplatformV1beta1"
    if response.request.method == "DELETE":
        assert body == {}
    elif response.request.method == "GET" and response.request.url.path.endswith("/cachedContents"):
        discovery.validate(body, f"{prefix}ListCachedContentsResponse", version)
    else:
        discovery.validate(body, f"{prefix}CachedContent", version)


async def _check(response: httpx.Response) -> None:
    await response.aread()
    if "cachedContents" in response.request.url.path:
        google_shaped(response)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def app(engine: FakeEngine, tmp_path: Path, clock: Clock, overrides: dict[str, Any]) -> AsyncIterator[Starlette]:
    application = build_app(settings(tmp_path, **overrides), local=engine)
    application.state.chatgate.caches.clock = clock
    async with running(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://chatgate", headers=AUTH, event_hooks={"response": [_check]}
    ) as client:
        yield client


@pytest.fixture
async def openai_http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The OpenAI routes, answers checked against OpenAI's schema."""
    async with asgi_client(app, base_url="http://chatgate", headers=AUTH) as client:
        yield client


def cache_body(**fields: Any) -> dict[str, Any]:
    return {
        "model": MODEL_RESOURCE,
        "displayName": "manual",
        "systemInstruction": {"parts": [{"text": "You answer from the manual."}]},
        "contents": [{"role": "user", "parts": [{"text": "The manual: ..."}]}],
        **fields,
    }


__all__ = ["MODEL"]
