from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from chatgate.config import GeminiSettings
from chatgate.engines.gemini import GeminiEngine
from tests.gemini import discovery
from tests.gemini.fake import FakeGemini


@pytest.fixture(scope="session")
def _server() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(_server: FakeGemini) -> Iterator[FakeGemini]:
    """The fake Gemini server, emptied; every body sent to it is checked against the
    Vertex discovery document of the API version in its path."""
    _server.reset()
    yield _server
    for seen in _server.seen:
        if seen.body is not None and seen.path.endswith(("generateContent", "streamGenerateContent")):
            version = "v1" if seen.path.startswith("/v1/") else "v1beta1"
            discovery.validate(seen.body, discovery.request_schema(version), version)


def settings(fake: FakeGemini, **overrides: object) -> GeminiSettings:
    values: dict[str, object] = {
        "project": "proj",
        "location": "us-central1",
        "access_token": "tok",
        "base_url": fake.url,
        "retry_backoff": 0.0,
    }
    values.update(overrides)
    return GeminiSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def engine(fake: FakeGemini) -> AsyncIterator[GeminiEngine]:
    e = GeminiEngine(settings(fake))
    yield e
    await e.aclose()
