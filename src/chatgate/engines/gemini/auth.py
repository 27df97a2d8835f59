"""Credentials for Google: an API key, a static bearer token, or google-auth credentials.

google-auth credentials (a service-account or other credentials file, or Application
Default Credentials) are loaded on first use and refreshed a few minutes before they
expire. Loading and refreshing do blocking I/O (files, the token endpoint, the metadata
server), so both run on a worker thread, one at a time, never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any, Protocol

from chatgate.config import GeminiSettings
from chatgate.errors import UpstreamError

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# Refresh when the token has less than this left, so no request carries a dying token.
REFRESH_MARGIN = datetime.timedelta(minutes=5)


class Auth(Protocol):
    async def headers(self) -> dict[str, str]: ...


class ApiKey:
    def __init__(self, key: str) -> None:
        self._headers = {"x-goog-api-key": key}

    async def headers(self) -> dict[str, str]:
        return self._headers


class StaticToken:
    def __init__(self, token: str) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}

    async def headers(self) -> dict[str, str]:
        return self._headers


class GoogleCredentials:
    """google-auth credentials, made by ``load`` (a blocking callable) on first use."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    def _stale(self) -> bool:
        creds = self._credentials
        if creds is None or not creds.token:
            return True
        expiry = getattr(creds, "expiry", None)  # naive UTC in google-auth
        if expiry is None:
            return False
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return expiry - now < REFRESH_MARGIN

    def _refresh_blocking(self) -> None:
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            if self._credentials is None:
                self._credentials = self._load()
            self._credentials.refresh(google.auth.transport.requests.Request())
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            # The text names files and service accounts: for the log, not for the client.
            log.warning("could not obtain Google credentials: %s: %s", type(exc).__name__, exc)
            raise UpstreamError(
                "this server could not obtain its Google credentials; the server log has the details",
                code="upstream_auth_failed",
            ) from exc

    async def headers(self) -> dict[str, str]:
        if self._stale():
            async with self._lock:
                if self._stale():
                    await asyncio.to_thread(self._refresh_blocking)
        return {"Authorization": f"Bearer {self._credentials.token}"}


def from_settings(settings: GeminiSettings) -> Auth | None:
    """The credentials the settings name, most explicit first; None if there are none."""
    if settings.api_key:
        return ApiKey(settings.api_key)
    if settings.access_token:
        return StaticToken(settings.access_token)
    if settings.credentials_file:
        path = settings.credentials_file

        def load_file() -> Any:
            return _load_file(path)

        return GoogleCredentials(load_file)
    if settings.use_adc:

        def load_default() -> Any:
            import google.auth

            credentials, _ = google.auth.default(scopes=SCOPES)
            return credentials

        return GoogleCredentials(load_default)
    return None


def _load_file(path: str) -> Any:
    """A credentials file, by its declared type: the two common kinds are loaded by their
    own constructors; others (workload identity federation, ...) through google-auth."""
    import json

    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    if kind == "authorized_user":
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
    import google.auth

    loaded, _ = google.auth.load_credentials_from_file(path, scopes=SCOPES)
    return loaded
