from __future__ import annotations

import time

import pytest
from starlette.datastructures import Headers

from chatgate import tokens
from chatgate.config import AuthSettings, ScopedKey
from chatgate.errors import PermissionDenied, Unauthenticated
from chatgate.front.auth import Authenticator

SECRET = b"s" * 48


def bearer(value: str) -> Headers:
    return Headers({"authorization": f"Bearer {value}"})


def test_disabled_accepts_anything() -> None:
    Authenticator(AuthSettings(enabled=False), None).check(Headers({}), "p")


def test_static_and_scoped_keys() -> None:
    auth = Authenticator(AuthSettings(api_keys=["k1"], keys=[ScopedKey(key="k2", projects=["a"])]), SECRET)
    auth.check(bearer("k1"), "anything")
    auth.check(bearer("k2"), "a")
    with pytest.raises(PermissionDenied):
        auth.check(bearer("k2"), "b")
    with pytest.raises(Unauthenticated):
        auth.check(bearer("k3"), "a")


def test_cached_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = Authenticator(AuthSettings(), SECRET)
    token = tokens.mint(SECRET, lifetime=60)
    auth.check(bearer(token), "p")
    auth.check(bearer(token), "p")  # from the cache
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.check(bearer(token), "p")


def test_cached_token_keeps_its_project_scope() -> None:
    auth = Authenticator(AuthSettings(), SECRET)
    token = tokens.mint(SECRET, project="a")
    auth.check(bearer(token), "a")
    with pytest.raises(PermissionDenied):
        auth.check(bearer(token), "b")


def test_malformed_authorization_headers() -> None:
    auth = Authenticator(AuthSettings(), SECRET)
    for headers in (Headers({}), Headers({"authorization": "Bearer "}), Headers({"authorization": "Token x"})):
        with pytest.raises(Unauthenticated):
            auth.check(headers, "p")
