"""``chatgate serve`` and ``chatgate token`` run as a user runs them, in subprocesses."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import MODEL
from tests.live import CliServer, cli_env, run_cli

pytestmark = pytest.mark.model

VERTEX = "/v1beta1/projects/my-project/locations/us-central1/endpoints/openapi/chat/completions"
STORY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Write a story about a magic backpack."}],
    "max_tokens": 16,
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # A private state directory: the server and `chatgate token` must find the same secret.
    return cli_env(XDG_STATE_HOME=str(tmp_path / "state"), HOME=str(tmp_path))


def test_serve_then_token_then_the_vertex_example(env: dict[str, str]) -> None:
    with CliServer(env=env) as server:
        token = run_cli("token", env=env).stdout.strip()
        assert token.count(".") == 2
        r = httpx.post(server.url + VERTEX, headers={"Authorization": f"Bearer {token}"}, json=STORY, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
        assert httpx.post(server.url + VERTEX, json=STORY).status_code == 401
        scoped = run_cli("token", "--project", "elsewhere", "--lifetime", "60", env=env).stdout.strip()
        assert (
            httpx.post(server.url + VERTEX, headers={"Authorization": f"Bearer {scoped}"}, json=STORY).status_code
            == 403
        )
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0)
        assert client.chat.completions.create(model=MODEL, messages=STORY["messages"], max_tokens=4).choices
    # Start-up says what happened: the model, where it came from, the URL to call.
    assert "loaded huggingfacetb/smollm2-135m-instruct" in server.output
    assert server.url in server.output


def test_no_auth_says_so_and_needs_no_credentials(env: dict[str, str]) -> None:
    with CliServer("--no-auth", env=env) as server:
        r = httpx.post(server.url + "/v1/chat/completions", json=STORY, timeout=60)
        assert r.status_code == 200
    assert "authentication is OFF" in server.output


def test_config_file_environment_and_flags(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "chatgate.toml"
    path.write_text('[auth]\napi_keys = ["from-file"]\n[server]\nport = 1\n')
    env = {**env, "CHATGATE_AUTH_API_KEYS": "from-env"}
    with CliServer("--config", str(path), env=env) as server:  # --port beats the file's port 1
        ok = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer from-env"})
        assert ok.status_code == 200
        assert httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer from-file"}).status_code == 401


def test_invalid_config_exits_before_serving(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nport = 'eighty'\n")
    result = run_cli("serve", "--config", str(path), env=env)
    assert result.returncode == 2
    assert "server.port" in result.stderr
    result = run_cli("serve", env={**env, "CHATGATE_GEMINI_MODE": "nope"})
    assert result.returncode == 2 and "gemini.mode" in result.stderr


def test_token_rejects_a_non_positive_lifetime(env: dict[str, str]) -> None:
    result = run_cli("token", "--lifetime", "0", env=env)
    assert result.returncode == 2 and "--lifetime" in result.stderr
