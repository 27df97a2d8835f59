"""A server that serves no local model: ``chatgate serve`` with ``[local] enabled = false``
relays to its endpoints without loading llama.cpp, in a few tens of MB."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from chatgate import config
from tests.live import CliServer, cli_env
from tests.upstream.servers import ROUTE, Upstream, openai_stub

# The embedded model alone made such a server hold about 690 MB.
RSS_LIMIT_MB = 150


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_relay_only_server_loads_no_model(tmp_path: Path) -> None:
    with Upstream(openai_stub) as up:
        path = tmp_path / "chatgate.toml"
        path.write_text(f'[local]\nenabled = false\n[endpoints.ep]\nupstreams = ["{up.url}"]\n')
        env = cli_env(XDG_STATE_HOME=str(tmp_path / "state"), HOME=str(tmp_path))
        with CliServer("--config", str(path), "--no-auth", env=env) as server:
            assert server.proc is not None
            base = server.url + ROUTE.format("ep")
            reply = httpx.post(base + "/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}]})
            assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
            assert httpx.get(server.url + "/v1/models").json()["data"] == []
            maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
            assert "libllama" not in maps and ".gguf" not in maps
            rss = rss_mb(server.proc.pid)
            print(f"relay-only server RSS: {rss:.0f} MB")
            assert rss < RSS_LIMIT_MB
        assert "loaded " not in server.output


def test_local_models_named_while_disabled_are_a_config_error() -> None:
    with pytest.raises(config.ConfigError, match="models.m: a local model, but local.enabled is false"):
        config.load(environ={}, overrides={"local": {"enabled": False}, "models": {"m": {"path": "/x.gguf"}}})
    with pytest.raises(config.ConfigError, match="endpoints.e: a local model"):
        config.load(environ={}, overrides={"local": {"enabled": False}, "endpoints": {"e": {"model": "m"}}})
    settings = config.load(environ={}, overrides={"local": {"enabled": False}})
    assert "local" not in settings.endpoints  # no `local` endpoint bound to a model that is not there
