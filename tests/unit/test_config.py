from __future__ import annotations

from pathlib import Path

import pytest

from chatgate import config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chatgate.toml"
    path.write_text(text)
    return path


def test_defaults_serve_the_embedded_model_on_loopback() -> None:
    settings = config.load(None, environ={})
    assert settings.server.host == "127.0.0.1" and settings.server.port == 8080
    assert settings.auth.enabled
    assert settings.endpoints["local"].model == config.EMBEDDED_MODEL


def test_environment_beats_file_and_flags_beat_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\nhost = '0.0.0.0'\n")
    assert config.load(path, environ={}).server.port == 9000
    env = {"CHATGATE_SERVER_PORT": "9100", "CHATGATE_AUTH_ENABLED": "false"}
    settings = config.load(path, environ=env)
    assert settings.server.port == 9100 and settings.server.host == "0.0.0.0"
    assert settings.auth.enabled is False
    assert config.load(path, environ=env, overrides={"server": {"port": 9200}}).server.port == 9200


def test_api_keys_from_environment_are_a_comma_list() -> None:
    settings = config.load(None, environ={"CHATGATE_AUTH_API_KEYS": "a, b,,c"})
    assert settings.auth.api_keys == ["a", "b", "c"]


def test_gemini_section_from_environment() -> None:
    settings = config.load(None, environ={"CHATGATE_GEMINI_API_KEY": "k", "CHATGATE_GEMINI_MODE": "gemini-api"})
    assert settings.gemini.api_key == "k" and settings.gemini.mode == "gemini-api"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[server]\nport = 'eighty'\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nprot = 80\n", "prot"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[gemini]\nmode = 'cloud'\n", "gemini.mode"),
        ("[endpoints.vllm]\nupstreams = ['ftp://x']\n", "endpoints.vllm"),
        ("[endpoints.empty]\n", "endpoints.empty"),
        ("[models.m]\npath = 'a.gguf'\npackage = 'p'\n", "models.m"),
        ("[local]\nmax_output_tokens = 0\n", "local.max_output_tokens"),
        ("[local]\nloop_control = -1\n", "local.loop_control"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, text), environ={})
    assert named in str(err.value)


def test_invalid_environment_value_names_the_key() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(None, environ={"CHATGATE_SERVER_PORT": "x"})
    assert "server.port" in str(err.value)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[server\n"), environ={})
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "missing.toml", environ={})


def test_state_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert config.state_dir(config.load(None, environ={})) == tmp_path / "chatgate"
    explicit = config.load(None, environ={}, overrides={"auth": {"state_dir": str(tmp_path / "s")}})
    assert config.state_dir(explicit) == tmp_path / "s"


def test_local_output_cap_and_loop_control_per_model(tmp_path: Path) -> None:
    from chatgate.engines.local.models import spec

    text = (
        "[local]\nmax_output_tokens = 500\ntext_loop_control = 0.5\n"
        "[models.m]\npath = 'm.gguf'\nmax_output_tokens = 200\nloop_control = 0\n"
    )
    (tmp_path / "m.gguf").write_bytes(b"")
    settings = config.load(write(tmp_path, text.replace("m.gguf", str(tmp_path / "m.gguf"))), environ={})
    model = spec("m", settings.models["m"], settings.local)
    assert (model.max_output_tokens, model.loop_control, model.text_loop_control) == (200, 0.0, 0.5)
    default = config.LocalSettings()
    assert default.max_output_tokens == 1024 and default.loop_control > 0 and default.text_loop_control == 0


@pytest.mark.parametrize(
    ("value", "size"),
    [(268435456, 268435456), ("268435456", 268435456), ("256MiB", 256 * 1024 * 1024), ("0.5 GB", 500_000_000)],
)
def test_cache_memory_takes_bytes_or_a_size(value: object, size: int) -> None:
    assert config.load(None, environ={}, overrides={"local": {"cache_memory": value}}).local.cache_memory == size


def test_cache_memory_default_and_environment() -> None:
    assert config.load(None, environ={}).local.cache_memory == 256 * 1024 * 1024
    loaded = config.load(None, environ={"CHATGATE_LOCAL_CACHE_MEMORY": "1GiB", "CHATGATE_LOCAL_MAX_CACHES": "3"})
    assert (loaded.local.cache_memory, loaded.local.max_caches) == (1024**3, 3)


@pytest.mark.parametrize("value", ["lots", "12 parsecs", "-5MiB", -1])
def test_bad_cache_memory_names_the_key(value: object) -> None:
    with pytest.raises(config.ConfigError, match="local.cache_memory"):
        config.load(None, environ={}, overrides={"local": {"cache_memory": value}})
