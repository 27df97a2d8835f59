"""The [limits] and [state] sections: validation and the environment."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from chatgate import config
from chatgate.config import AuthSettings, ScopedKey
from chatgate.front.auth import Authenticator


def test_limits_name_keys_that_exist() -> None:
    with pytest.raises(config.ConfigError, match="limits.keys.ghost: no key in auth.keys has this name"):
        config.load(environ={}, overrides={"limits": {"keys": {"ghost": {"requests_per_minute": 1}}}})
    with pytest.raises(config.ConfigError, match="auth.keys: two keys share a name"):
        config.load(environ={}, overrides={"auth": {"keys": [{"key": "a", "name": "x"}, {"key": "b", "name": "x"}]}})
    with pytest.raises(config.ConfigError, match="limits.default.requests_per_minute"):
        config.load(environ={}, overrides={"limits": {"default": {"requests_per_minute": 0}}})
    with pytest.raises(config.ConfigError, match="limits.default: Object contains unknown field `burst`"):
        config.load(environ={}, overrides={"limits": {"default": {"burst": 3}}})


def test_state_from_the_environment_and_checked() -> None:
    settings = config.load(
        environ={
            "CHATGATE_STATE_REDIS_URL": "redis://10.0.0.5:6379/0",
            "CHATGATE_STATE_ON_ERROR": "closed",
            "CHATGATE_LIMITS_DEFAULT_OUTPUT_TOKENS": "256",
        }
    )
    assert settings.state.redis_url == "redis://10.0.0.5:6379/0" and settings.state.on_error == "closed"
    assert settings.limits.default_output_tokens == 256
    with pytest.raises(config.ConfigError, match="state.on_error"):
        config.load(environ={"CHATGATE_STATE_ON_ERROR": "maybe"})
    with pytest.raises(config.ConfigError, match="state.redis_url: not a redis://"):
        config.load(environ={"CHATGATE_STATE_REDIS_URL": "http://10.0.0.5"})


def test_the_authenticator_names_the_callers_key() -> None:
    auth = Authenticator(AuthSettings(api_keys=["plain"], keys=[ScopedKey(key="k2", name="ci")]), b"s" * 48)
    assert auth.check(Headers({"authorization": "Bearer k2"}), "p") == "ci"
    assert auth.check(Headers({"authorization": "Bearer plain"}), "p") is None
