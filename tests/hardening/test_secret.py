"""The token secret: an unsafe file stops the server and ``chatgate token`` with a message
saying what to fix; creation survives stale temporary files; token lifetimes are capped."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from chatgate import tokens
from tests.hardening.conftest import JSON, gateway
from tests.live import cli_env, run_cli


def write_secret(state: Path, content: bytes, mode: int) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    path = state / tokens.SECRET_FILE
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("content", "mode", "says"),
    [
        (b"", 0o600, "at least 32"),
        (b"short-secret\n", 0o600, "at least 32"),
        (b"s" * 64, 0o644, "chmod 600"),
        (b"s" * 64, 0o640, "chmod 600"),
    ],
)
def test_an_unsafe_secret_is_refused(tmp_path: Path, content: bytes, mode: int, says: str) -> None:
    write_secret(tmp_path, content, mode)
    with pytest.raises(tokens.SecretError, match=says):
        tokens.load_secret(tmp_path)


@pytest.mark.parametrize("command", [["token"], ["serve", "--port", "0"]])
def test_the_cli_refuses_to_start_with_an_unsafe_secret(tmp_path: Path, command: list[str]) -> None:
    write_secret(tmp_path / "state" / "chatgate", b"s" * 64, 0o644)
    env = cli_env(XDG_STATE_HOME=str(tmp_path / "state"), HOME=str(tmp_path))
    result = run_cli(*command, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unsafe token secret" in result.stderr and "chmod 600" in result.stderr
    assert result.stdout == ""  # no token printed


def test_stale_temporary_files_do_not_block_creation(tmp_path: Path) -> None:
    # What a pid-named temporary file left by a crash looked like (pid 1 in a container).
    for name in (f".{tokens.SECRET_FILE}.1", f".{tokens.SECRET_FILE}.{os.getpid()}"):
        (tmp_path / name).write_bytes(b"partial")
    secret = tokens.load_secret(tmp_path)
    assert len(secret) >= tokens.MIN_SECRET_BYTES
    assert tokens.load_secret(tmp_path) == secret
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == sorted([tokens.SECRET_FILE, f".{tokens.SECRET_FILE}.1", f".{tokens.SECRET_FILE}.{os.getpid()}"])


def test_verify_refuses_tokens_minted_to_live_too_long(tmp_path: Path) -> None:
    secret = tokens.load_secret(tmp_path)
    assert tokens.verify(secret, tokens.mint(secret, lifetime=3600), max_lifetime=3600).project == "*"
    with pytest.raises(tokens.InvalidToken, match="longer than"):
        tokens.verify(secret, tokens.mint(secret, lifetime=3601), max_lifetime=3600)


def test_the_server_refuses_long_lived_tokens(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with gateway(state, auth={"enabled": True, "max_token_lifetime": 600}) as server:
        secret = tokens.load_secret(state)
        route = server.url + "/v1/models"
        ok = httpx.get(route, headers={"Authorization": "Bearer " + tokens.mint(secret, lifetime=600)})
        assert ok.status_code == 200, ok.text
        year = tokens.mint(secret, lifetime=365 * 86400, now=time.time())
        refused = httpx.get(route, headers={**JSON, "Authorization": "Bearer " + year})
        assert refused.status_code == 401
        assert "longer than" in refused.json()["error"]["message"]


def test_chatgate_token_lifetime_is_capped(tmp_path: Path) -> None:
    env = cli_env(XDG_STATE_HOME=str(tmp_path / "state"), HOME=str(tmp_path))
    result = run_cli("token", "--lifetime", str(24 * 3600 + 1), env=env)
    assert result.returncode == 2 and "max_token_lifetime" in result.stderr
    result = run_cli("token", "--lifetime", str(24 * 3600), env=env)
    assert result.returncode == 0, result.stderr
    secret = tokens.load_secret(tmp_path / "state" / "chatgate")
    assert tokens.verify(secret, result.stdout.strip(), max_lifetime=24 * 3600).project == "*"
    config = tmp_path / "c.toml"
    config.write_text("[auth]\nmax_token_lifetime = 600\n")
    result = run_cli("token", "--config", str(config), "--lifetime", "601", env=env)
    assert result.returncode == 2 and "600" in result.stderr
