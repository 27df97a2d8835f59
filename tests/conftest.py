"""Shared fixtures: settings with a private state directory, a live server with the real
embedded model (started once per session), tokens it accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatgate import config, tokens
from tests.live import LiveServer

MODEL = config.EMBEDDED_MODEL
PROJECT = "my-project"
OPENAPI = f"/v1beta1/projects/{PROJECT}/locations/us-central1/endpoints/openapi"


def make_settings(state: Path, **sections: Any) -> config.Settings:
    sections.setdefault("auth", {})
    sections["auth"] = {"state_dir": str(state), **sections["auth"]}
    return config.load(None, environ={}, overrides=sections)


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="session")
def live(state_dir: Path) -> Iterator[LiveServer]:
    """chatgate with auth on, the embedded model and its default endpoint ``local``."""
    settings = make_settings(
        state_dir, auth={"api_keys": ["static-key"], "keys": [{"key": "scoped-key", "projects": ["other"]}]}
    )
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="session")
def token(state_dir: Path) -> str:
    return tokens.mint(tokens.load_secret(state_dir))


@pytest.fixture(scope="session")
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
