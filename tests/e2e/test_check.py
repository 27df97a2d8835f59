"""``chatgate check`` as a user runs it: a table of what works, non-zero when something does not."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chatgate.engines.local.probe import CACHE_FILE
from tests.conftest import MODEL
from tests.gemini.fake import FakeGemini
from tests.live import cli_env, free_port, run_cli
from tests.upstream.servers import Upstream, openai_stub

TOKEN = "ya29.never-printed"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(XDG_STATE_HOME=str(tmp_path / "state"), HOME=str(tmp_path))


@pytest.fixture
def google() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


def service_account(path: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "sa-project",
                "private_key_id": "1",
                "private_key": pem.decode(),
                "client_email": "sa@sa-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


def rows(stdout: str) -> dict[str, tuple[str, str]]:
    """The table, by its first column: (result, detail)."""
    lines = stdout.strip().splitlines()
    assert re.match(r"check\s+result\s+detail$", lines[0]), stdout
    found = {}
    for line in lines[1:]:
        what, result, detail = re.split(r"\s{2,}", line, maxsplit=2)
        found[what] = (result, detail)
    return found


@pytest.mark.model
def test_a_healthy_configuration(tmp_path: Path, env: dict[str, str], google: FakeGemini) -> None:
    google.reply(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
    with Upstream(openai_stub) as upstream:
        config = tmp_path / "chatgate.toml"
        config.write_text(
            f'[gemini]\ncredentials_file = "{service_account(tmp_path / "sa.json", google.url + "/token")}"\n'
            f'[endpoints.mine]\nupstreams = ["{upstream.url}/v1"]\n'
        )
        result = run_cli("check", "--config", str(config), env=env, timeout=280)
        assert [r.path for r in upstream.requests] == ["/v1/models"]  # the health route
    assert result.returncode == 0, result.stdout + result.stderr
    table = rows(result.stdout)
    result_, detail = table[f"local model {MODEL}"]
    assert result_ == "ok"
    assert re.search(r"loaded in [\d.]+ s; \d+ tokens at [\d.]+ tokens/s; extra buffer types (on|off): ", detail)
    assert table["gemini"] == (
        "ok",
        f"Vertex AI (us-central1): credentials file {tmp_path / 'sa.json'} resolve to an access token",
    )
    assert google.seen[0].path == "/token"
    assert table["endpoint mine upstream #1"][0] == "ok"
    assert table["endpoint local"] == ("ok", f"served by local model {MODEL}")
    assert TOKEN not in result.stdout + result.stderr
    # The probe's verdict is cached where `chatgate serve` will look for it.
    cached = json.loads((tmp_path / "state" / "chatgate" / CACHE_FILE).read_text())
    assert len(cached["models"]) == 1


def test_a_broken_configuration(tmp_path: Path, env: dict[str, str]) -> None:
    """A missing GGUF, an upstream that refuses connections, an unreadable credentials file:
    each is a FAILED row that says what is wrong, and the exit status is 1."""
    config = tmp_path / "chatgate.toml"
    refused = f"http://127.0.0.1:{free_port()}"
    config.write_text(
        f'[models.missing]\npath = "{tmp_path / "nowhere.gguf"}"\n'
        f'[gemini]\ncredentials_file = "{tmp_path / "no-such-key.json"}"\nproject = "p"\n'
        f'[endpoints.down]\nupstreams = ["{refused}"]\nconnect_timeout = 2.0\n'
    )
    result = run_cli("check", "--config", str(config), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    table = rows(result.stdout)
    assert table["local model missing"] == ("FAILED", f"models.missing.path: no such file: {tmp_path / 'nowhere.gguf'}")
    result_, detail = table["gemini"]
    assert result_ == "FAILED" and "no-such-key.json" in detail
    result_, detail = table["endpoint down upstream #1"]
    assert result_ == "FAILED" and refused in detail and "Connection refused" in detail
    assert table["endpoint local"] == ("FAILED", "no local model named 'missing' loads")


def test_what_is_not_configured_is_shown_not_failed(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "chatgate.toml"
    config.write_text(f'[models.m]\npath = "{tmp_path / "m.gguf"}"\n')
    result = run_cli("check", "--config", str(config), env=env)
    assert rows(result.stdout)["gemini"] == ("-", "not configured")
