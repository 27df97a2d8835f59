"""Model-free servers for the hardening tests: chatgate with no local model and its Gemini
engine pointed at the fake Gemini server (Google's side is the only thing mocked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatgate import config
from chatgate.engines.local.engine import LocalEngine
from tests.gemini.fake import FakeGemini
from tests.live import LiveServer

GEMINI = "google/gemini-2.5-flash"
ROUTE = "/v1/projects/{}/locations/us-central1/endpoints/{}/chat/completions"
OK = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP", "index": 0}]}
JSON = {"Content-Type": "application/json"}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": GEMINI, "messages": [{"role": "user", "content": "hi"}], **fields}


def settings(state: Path, fake: FakeGemini | None = None, **sections: Any) -> config.Settings:
    sections.setdefault("auth", {"enabled": False})
    sections["auth"] = {"state_dir": str(state), **sections["auth"]}
    if fake is not None:
        sections["gemini"] = {
            "project": "proj",
            "access_token": "tok",
            "base_url": fake.url,
            "max_retries": 0,
            **sections.get("gemini", {}),
        }
    return config.load(None, environ={}, overrides=sections)


def gateway(state: Path, fake: FakeGemini | None = None, **sections: Any) -> LiveServer:
    return LiveServer(settings(state, fake, **sections), local=LocalEngine([]))


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"message", "type", "param", "code"}, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def fake_gemini() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    fake_gemini.reset()
    return fake_gemini
