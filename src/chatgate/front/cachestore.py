"""Context caches on local models (``cachedContents``), kept in this process.

A cache is a prompt prefix (``contents``, ``systemInstruction``, ``tools``, ``toolConfig``)
pinned in a local model's KV cache (``LocalEngine.pin``) until ``expireTime``. The store keeps
the resources by project: a caller sees only its project's caches. An expired cache is gone
at the next look at the store (every operation sweeps first) and its pin freed; so is a
deleted one. At most ``local.max_caches`` caches live at once, and their pins share
``local.cache_memory`` (the engine refuses a pin beyond it: 429).

Gemini caches live at Google; the store only remembers which chatgate project created each
(``owners``), so one project cannot see or use another's. That record is in memory: after a
restart chatgate no longer lists its Gemini caches (Google expires them).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from chatgate.engines.local.engine import Pinned
from chatgate.errors import InvalidRequest, NotFound, ResourceExhausted
from chatgate.protocols import gemini as g

DEFAULT_TTL = 3600.0  # seconds, as Google's default
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000  # larger values are taken as this, as Google does
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class Cache:
    id: str
    project: str
    location: str | None  # where it was created; None on the Gemini API form
    model: str  # the served local model (the engine's name)
    shown_model: str  # the model as the client named it, ``publisher/model``
    display_name: str | None
    contents: list[g.Content]
    system_instruction: g.Content | None
    tools: list[g.Tool] | None
    tool_config: g.ToolConfig | None
    create_time: float
    update_time: float
    expire_time: float
    pinned: Pinned

    def prefix(self) -> g.GenerateContentRequest:
        """What ``LocalEngine.pin`` keeps: the request every use of the cache starts with."""
        return g.GenerateContentRequest(
            contents=list(self.contents),
            system_instruction=self.system_instruction,
            tools=self.tools,
            tool_config=self.tool_config,
        )


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


class CacheStore:
    def __init__(
        self, unpin: Callable[[Pinned], None], *, max_caches: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._unpin = unpin
        self.max_caches = max_caches
        self.clock = clock
        self._caches: dict[tuple[str, str], Cache] = {}  # (project, id) -> cache
        # Gemini caches created through chatgate, by id: (chatgate project, Google's name).
        self.owners: dict[str, tuple[str, str]] = {}

    def __len__(self) -> int:
        self.sweep()
        return len(self._caches)

    def sweep(self) -> None:
        now = self.clock()
        for key in [k for k, c in self._caches.items() if c.expire_time <= now]:
            self._unpin(self._caches.pop(key).pinned)

    def room(self) -> None:
        """Raise ``ResourceExhausted`` when no cache may be added (before any pinning work)."""
        if len(self) >= self.max_caches:
            raise ResourceExhausted(
                f"this server keeps at most {self.max_caches} context caches (local.max_caches); "
                "delete one or wait for one to expire"
            )

    def add(self, cache: Cache) -> None:
        try:
            self.room()
        except ResourceExhausted:
            self._unpin(cache.pinned)
            raise
        self._caches[(cache.project, cache.id)] = cache

    def get(self, project: str, cache_id: str, location: str | None = None) -> Cache:
        self.sweep()
        cache = self._caches.get((project, cache_id))
        if cache is None or (location is not None and cache.location not in (None, location)):
            raise NotFound(f"cached content {cache_id!r} not found (it may have expired)", code="cache_not_found")
        return cache

    def find(self, project: str, cache_id: str) -> Cache | None:
        self.sweep()
        return self._caches.get((project, cache_id))

    def google_name(self, project: str, cache_id: str) -> str | None:
        """Google's name of the Gemini cache ``cache_id`` if ``project`` created it."""
        owner = self.owners.get(cache_id)
        return owner[1] if owner is not None and owner[0] == project else None

    def listing(self, project: str, location: str | None = None) -> list[Cache]:
        self.sweep()
        mine = [
            c
            for c in self._caches.values()
            if c.project == project and (location is None or c.location in (None, location))
        ]
        return sorted(mine, key=lambda c: c.create_time)  # stable: ties in creation order

    def remove(self, project: str, cache_id: str, location: str | None = None) -> None:
        cache = self.get(project, cache_id, location)
        del self._caches[(project, cache_id)]
        self._unpin(cache.pinned)

    def clear(self) -> None:
        for cache in self._caches.values():
            self._unpin(cache.pinned)
        self._caches.clear()


# --- wire values: timestamps, durations, page tokens -----------------------------------------


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with microseconds, as Google writes ``google.protobuf.Timestamp``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str, param: str) -> float:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # up to nanoseconds on the wire; Python takes microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{param} must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z, not {value!r}", param=param
        ) from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{param} must name its time zone (end it with Z)", param=param)
    return parsed.timestamp()


def parse_duration(value: str, param: str) -> float:
    """``google.protobuf.Duration`` in JSON: seconds with an ``s`` suffix ("3600s", "1.5s")."""
    number = value.strip().removesuffix("s") if value.strip().endswith("s") else None
    try:
        seconds = float(number) if number else None
    except ValueError:
        seconds = None
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise InvalidRequest(f'{param} must be a duration in seconds such as "3600s", not {value!r}', param=param)
    if seconds <= 0:
        raise InvalidRequest(f"{param} must be positive, not {value!r}", param=param)
    return seconds


def page_token(kind: str, position: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def parse_page_token(token: str) -> tuple[str, str]:
    """(``"local"`` or ``"google"``, position); a token this server did not make is a 400."""
    try:
        kind, sep, position = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, sep, position = "", "", ""
    if not sep or kind not in ("local", "google") or (kind == "local" and not position.isdigit()):
        raise InvalidRequest("pageToken is not a token this server gave", param="pageToken")
    return kind, position
