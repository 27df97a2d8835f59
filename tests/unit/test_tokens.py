from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from chatgate import tokens


def test_secret_is_created_once_and_private(tmp_path: Path) -> None:
    first = tokens.load_secret(tmp_path / "state")
    assert tokens.load_secret(tmp_path / "state") == first
    mode = stat.S_IMODE((tmp_path / "state" / tokens.SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert len(first) >= 32


def test_token_round_trip_with_and_without_project(tmp_path: Path) -> None:
    secret = tokens.load_secret(tmp_path)
    assert tokens.verify(secret, tokens.mint(secret)).project == tokens.ALL_PROJECTS
    claims = tokens.verify(secret, tokens.mint(secret, project="p1", lifetime=60))
    assert claims.project == "p1" and claims.expires <= time.time() + 61


def test_expired_tampered_and_foreign_tokens_fail(tmp_path: Path) -> None:
    secret = tokens.load_secret(tmp_path)
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(secret, tokens.mint(secret, lifetime=10, now=time.time() - 100))
    token = tokens.mint(secret, project="p1")
    header, payload, signature = token.split(".")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(secret, f"{header}.{payload}.{signature[::-1]}")
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(secret, tokens.mint(b"x" * 48))
