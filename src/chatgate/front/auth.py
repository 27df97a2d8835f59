"""Who may call: static API keys and signed tokens, each scoped to projects.

``check`` answers with the caller's key name (a named ``[[auth.keys]]`` entry), which quotas
charge; tokens are charged to their project only. ``revoked`` holds the ids of revoked tokens,
kept current by ``front/quota.py`` from the shared state.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict

from starlette.datastructures import Headers

from chatgate import tokens
from chatgate.config import AuthSettings
from chatgate.errors import PermissionDenied, Unauthenticated

VERIFIED_CACHE_SIZE = 4096


class Authenticator:
    def __init__(self, settings: AuthSettings, secret: bytes | None) -> None:
        self.enabled = settings.enabled
        self._secret = secret
        self._max_lifetime = settings.max_token_lifetime
        # (key bytes, projects, name) triples; compared in constant time, every one of them.
        self._keys: list[tuple[bytes, frozenset[str], str | None]] = [
            (key.encode(), frozenset({tokens.ALL_PROJECTS}), None) for key in settings.api_keys
        ] + [(scoped.key.encode(), frozenset(scoped.projects), scoped.name) for scoped in settings.keys]
        self.revoked: frozenset[str] = frozenset()
        # Tokens already verified, most recent last: a client reuses its token for many
        # requests, and verifying a signature costs more than the rest of a request.
        self._verified: OrderedDict[str, tokens.Claims] = OrderedDict()

    def check(self, headers: Headers, project: str, *, query_key: str | None = None) -> str | None:
        """Raise ``Unauthenticated`` (401) or ``PermissionDenied`` (403), or return the
        caller's key name (``None`` for a token or an unnamed key). ``query_key``: the
        ``?key=`` of a URL, which Google's native routes accept after the headers."""
        if not self.enabled:
            return None
        credential = _credential(headers) or query_key or None
        if credential is None:
            raise Unauthenticated(
                "missing credentials: send `Authorization: Bearer <token>` (mint one with `chatgate token`)"
            )
        name = None
        found = self._key(credential)
        if found is not None:
            projects, name = found
        else:
            projects = self._token_projects(credential)
        if tokens.ALL_PROJECTS not in projects and project not in projects:
            raise PermissionDenied(f"the credentials are not valid for project {project!r}")
        return name

    def _key(self, credential: str) -> tuple[frozenset[str], str | None] | None:
        given = credential.encode()
        found = None
        for key, projects, name in self._keys:
            if hmac.compare_digest(key, given) and found is None:
                found = projects, name
        return found

    def _token_projects(self, credential: str) -> frozenset[str]:
        if self._secret is None or credential.count(".") != 2:
            raise Unauthenticated("invalid API key or token")
        claims = self._verified.get(credential)
        if claims is None:
            try:
                claims = tokens.verify(self._secret, credential, max_lifetime=self._max_lifetime)
            except tokens.InvalidToken as exc:
                raise Unauthenticated(str(exc)) from None
            self._verified[credential] = claims
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        elif claims.expires <= time.time():
            del self._verified[credential]
            raise Unauthenticated("the token has expired; mint a new one with `chatgate token`")
        else:
            self._verified.move_to_end(credential)
        if claims.token_id in self.revoked:
            raise Unauthenticated("the token has been revoked; mint a new one with `chatgate token`")
        return frozenset({claims.project})


def _credential(headers: Headers) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    # Google clients send API keys this way.
    return headers.get("x-goog-api-key") or None
