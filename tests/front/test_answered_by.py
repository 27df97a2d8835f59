"""Which model really answered: the ``x-chatgate-model`` header, while the body echoes the
client's name for the model (``[gemini] local_fallback`` answers Gemini names locally)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chatgate.front.app import build_app
from tests.asgi import running
from tests.front.conftest import AUTH, ROUTE, asgi_client, body, settings
from tests.front.fake import MODEL, FakeEngine

GEMINI = "google/gemini-2.0-flash-001"


@pytest.fixture
async def fallback(engine: FakeEngine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings(tmp_path, gemini={"local_fallback": MODEL}, models={MODEL: {"path": "unused.gguf"}})
    application = build_app(configured, local=engine)
    async with running(application), asgi_client(application, base_url="http://chatgate") as client:
        yield client


@pytest.mark.parametrize("stream", [False, True])
async def test_local_fallback_says_who_answered(fallback: httpx.AsyncClient, stream: bool) -> None:
    r = await fallback.post(ROUTE + "/chat/completions", headers=AUTH, json=body(model=GEMINI, stream=stream))
    assert r.status_code == 200, r.text
    assert r.headers["x-chatgate-model"] == MODEL
    assert f'"model":"{GEMINI}"' in r.text.replace(" ", "")


async def test_a_local_model_names_itself(http: httpx.AsyncClient) -> None:
    r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(model=MODEL.upper()))
    assert r.status_code == 200, r.text
    assert r.headers["x-chatgate-model"] == MODEL and r.json()["model"] == MODEL.upper()
