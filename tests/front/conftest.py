"""The app served in this process over a fake engine: no model, no sockets, seconds to run.

``app`` is ``build_app`` with ``engine`` (a ``FakeEngine``) as its local engine, started
(lifespan) for the test; ``http`` reaches it through ``httpx.ASGITransport``, ``client`` is
the official async OpenAI SDK on top of that, with a key valid for every project. Every
answer either of them gets is checked against OpenAI's schema (``openai_shaped``): chat
completions, each stream chunk, model lists and error bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette

from chatgate import config, tokens
from chatgate.front.app import build_app
from tests.asgi import running
from tests.front.fake import MODEL, FakeEngine
from tests.openapi import validate, validate_chunk, validate_completion

PROJECT = "my-project"
ROUTE = f"/v1beta1/projects/{PROJECT}/locations/us-central1/endpoints/openapi"
KEY = "static-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def settings(state: Path, **sections: Any) -> config.Settings:
    sections.setdefault("auth", {"api_keys": [KEY], "keys": [{"key": "scoped-key", "projects": ["other"]}]})
    sections["auth"] = {"state_dir": str(state), **sections["auth"]}
    sections.setdefault("endpoints", {"fake-ep": {"model": MODEL}})
    return config.load(None, environ={}, overrides=sections)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
async def app(engine: FakeEngine, state_path: Path) -> AsyncIterator[Starlette]:
    application = build_app(settings(state_path), local=engine)
    async with running(application):
        yield application


async def openai_shaped(response: httpx.Response) -> None:
    """Fail unless an answer is what OpenAI's API document allows for its route."""
    await response.aread()
    path = response.request.url.path
    if response.status_code >= 400:
        if path.endswith(("/chat/completions", "/models")):
            validate("ErrorResponse", response.json())
        return
    if path.endswith("/models"):
        validate("ListModelsResponse", response.json())
    elif path.endswith("/chat/completions") and response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            for frame in response.text.split("\n\n")[:-1]:
                data = frame.removeprefix("data: ")
                if data == "[DONE]":
                    continue
                event = json.loads(data)
                if "error" in event:
                    validate("ErrorResponse", event)
                else:
                    validate_chunk(event)
        else:
            validate_completion(response.json())


def asgi_client(app: Starlette, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), event_hooks={"response": [openai_shaped]}, **kwargs)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, base_url="http://chatgate") as client:
        yield client


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[openai.AsyncOpenAI]:
    http_client = asgi_client(app)
    async with openai.AsyncOpenAI(
        base_url="http://chatgate" + ROUTE, api_key=KEY, http_client=http_client, max_retries=0
    ) as sdk:
        yield sdk


def token(state: Path, **claims: Any) -> str:
    return tokens.mint(tokens.load_secret(state), **claims)


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}
