"""The models Google serves, from its own ``models.list``, cached.

Vertex lists Model Garden's ``publishers/google/models`` (``publisherModels``), the Gemini
API its ``models`` (with ``supportedGenerationMethods``); both page with ``nextPageToken``.
Only models that answer ``generateContent`` are kept: on the Gemini API those that say so,
on Vertex the ``gemini-*`` family (Model Garden's listing holds Imagen, embeddings, ...,
and says nothing about methods).

A listing is kept for ``TTL`` seconds. When Google cannot be reached the last listing is
served (none at first), and the next attempt waits ``RETRY`` seconds: a listing route must
answer at once, with what is known.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import msgspec

log = logging.getLogger(__name__)

TTL = 3600.0
RETRY = 60.0
MAX_PAGES = 20
PAGE_SIZE = 1000

# (url) → (HTTP status, body)
Get = Callable[[str], Awaitable[tuple[int, bytes]]]
_decoder = msgspec.json.Decoder(dict[str, Any])


def model_ids(page: dict[str, Any]) -> list[str]:
    """The ids (``gemini-2.5-flash``) of the generating models on one page, either form."""
    ids = []
    for model in page.get("models") or []:
        methods = model.get("supportedGenerationMethods") or []
        name = model.get("name")
        if isinstance(name, str) and "generateContent" in methods:
            ids.append(name.rpartition("/")[2])
    for model in page.get("publisherModels") or []:
        name = model.get("name")
        if isinstance(name, str) and name.rpartition("/")[2].startswith("gemini-"):
            ids.append(name.rpartition("/")[2])
    return ids


class GoogleModels:
    """``await ids()``: the model ids Google lists, fetched at most once per ``TTL``."""

    def __init__(self, url: str, get: Get, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._get = get
        self._clock = clock
        self._ids: list[str] = []
        self._next = 0.0  # when to ask Google again
        self._lock = asyncio.Lock()

    async def ids(self) -> list[str]:
        if self._clock() < self._next:
            return self._ids
        async with self._lock:  # concurrent listings share one fetch
            if self._clock() < self._next:
                return self._ids
            try:
                self._ids = await self._fetch()
                self._next = self._clock() + TTL
            except Exception as exc:  # a listing degrades to what is known, never fails
                log.warning("could not list Google's models (%s); listing %d known", exc, len(self._ids))
                self._next = self._clock() + RETRY
        return self._ids

    async def _fetch(self) -> list[str]:
        ids: list[str] = []
        token = None
        for _ in range(MAX_PAGES):
            query = {"pageSize": PAGE_SIZE, **({"pageToken": token} if token else {})}
            status, body = await self._get(f"{self._url}?{urlencode(query)}")
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
            page = _decoder.decode(body)
            ids += model_ids(page)
            token = page.get("nextPageToken")
            if not token:
                break
        return sorted(set(ids))
