"""The native Gemini routes served in this process over the fake engine (``tests/front``'s
app), and checks that every answer has Google's shape: errors ``{"error": {"code",
"message", "status"}}``, answers valid under Vertex's discovery document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.front import conftest as front
from tests.front.conftest import PROJECT
from tests.gemini import discovery

# The app over the fake engine, as tests/front serves it.
app, engine, state_path = front.app, front.engine, front.state_path

VERTEX = f"/v1beta1/projects/{PROJECT}/locations/us-central1/publishers"
API = "/v1beta/models"

SCHEMAS = {
    "generateContent": "GoogleCloudAiplatformV1beta1GenerateContentResponse",
    "streamGenerateContent": "GoogleCloudAiplatformV1beta1GenerateContentResponse",
    "countTokens": "GoogleCloudAiplatformV1beta1CountTokensResponse",
}


def google_error(body: Any) -> dict[str, Any]:
    """The ``error`` of a Google-shaped error body; fails on any other shape."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "status"}, error
    assert isinstance(error["code"], int) and isinstance(error["message"], str) and error["status"].isupper()
    return error


def stream_elements(response: httpx.Response) -> list[Any]:
    """A stream's elements: SSE events, or the JSON array's items."""
    if response.headers["content-type"].startswith("text/event-stream"):
        frames = [f for f in response.text.split("\n\n") if f.strip()]
        assert all(f.startswith("data: ") for f in frames), frames
        return [json.loads(f.removeprefix("data: ")) for f in frames]
    elements = json.loads(response.text)
    assert isinstance(elements, list)
    return elements


def validate(value: Any, method: str) -> None:
    if isinstance(value, dict) and "error" in value:
        google_error(value)
    else:
        discovery.validate(value, SCHEMAS[method])


async def google_shaped(response: httpx.Response) -> None:
    await response.aread()
    path = response.request.url.path
    if response.status_code >= 400:
        google_error(response.json())
        assert response.headers["content-type"] == "application/json"
        return
    method = path.rpartition(":")[2]
    if method == "streamGenerateContent":
        for element in stream_elements(response):
            validate(element, method)
    elif method in SCHEMAS:
        validate(response.json(), method)


@pytest.fixture
async def native(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://chatgate", event_hooks={"response": [google_shaped]}
    ) as client:
        yield client


def hello(**fields: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **fields}
