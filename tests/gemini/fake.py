"""A fake Gemini server: a real HTTP server on 127.0.0.1 (``tests.serve.AppServer``).

Tests queue replies (``reply(...)``, ``replay(recording)``); every request is recorded
(method, path, query, headers, JSON body) for assertions. A reply may ``hold`` the stream
open after its chunks until the client disconnects, which the server then records.

``cachedContents`` requests with no reply queued are served from ``caches``, a small model of
Google's context caching API (create, list with pages, get, patch, delete) in the wire shape
of Google's documentation: Vertex names caches ``projects/<number>/locations/<l>/cachedContents/<id>``,
the Gemini API ``cachedContents/<id>``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.serve import AppServer

RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "gemini-recordings" / "mock-responses"


@dataclass
class Reply:
    status: int = 200
    chunks: list[bytes] = field(default_factory=list)
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # keep the response open until the client goes away


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


def recording_reply(name: str) -> Reply:
    """The HTTP response a recording stands for: its body with the status it implies."""
    raw = (RECORDINGS / name).read_bytes()
    text = raw.lstrip()
    if name.endswith(".html"):
        return Reply(status=404, chunks=[raw], content_type="text/html; charset=UTF-8")
    if text.startswith(b"data:"):
        # An SSE body: sent event by event so the client sees a real stream.
        events = [e + b"\n\n" for e in raw.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
        return Reply(chunks=events, content_type="text/event-stream")
    status = 200
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and len(parsed) == 1:
        parsed = parsed[0]
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        status = int(parsed["error"].get("code") or 500)
    return Reply(status=status, chunks=[raw])


def _time(when: datetime) -> str:
    """A timestamp as Google writes one: nanoseconds, Z."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def _json(value: Any) -> Reply:
    return Reply(chunks=[json.dumps(value).encode()])


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body  # a form post (an OAuth token request)


class FakeGemini:
    def __init__(self) -> None:
        self.replies: collections.deque[Reply] = collections.deque()
        self.seen: list[Seen] = []
        self.disconnects = 0
        self.caches: dict[str, dict[str, Any]] = {}  # by resource name
        # Google's model list, answered when no reply is queued (Vertex's publisher models).
        self.models = ["gemini-2.5-flash", "gemini-2.5-pro"]
        self._ids = itertools.count(1000000001)
        self.url = ""
        self._server: AppServer | None = None

    # --- test API ---

    def reply(
        self,
        status: int = 200,
        body: Any = None,
        *,
        chunks: list[bytes] | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        hold: bool = False,
    ) -> None:
        if chunks is None:
            chunks = [body if isinstance(body, bytes) else json.dumps(body).encode()]
        self.replies.append(
            Reply(
                status=status,
                chunks=chunks,
                headers=headers or {},
                hold=hold,
                content_type=content_type or "application/json",
            )
        )

    def sse(self, *events: Any, hold: bool = False) -> None:
        self.replies.append(
            Reply(
                chunks=[b"data: " + json.dumps(e).encode() + b"\n\n" for e in events],
                content_type="text/event-stream",
                hold=hold,
            )
        )

    def replay(self, name: str) -> None:
        self.replies.append(recording_reply(name))

    def reset(self) -> None:
        self.replies.clear()
        self.seen.clear()
        self.caches.clear()
        self.disconnects = 0

    # --- ASGI ---

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append(
            Seen(
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"].decode(),
                headers={k.decode(): v.decode() for k, v in scope["headers"]},
                body=_parse(body),
            )
        )
        if not self.replies and "/cachedContents" in scope["path"]:
            seen = self.seen[-1]
            reply = self._cached_contents(seen.method, seen.path, seen.query, seen.body)
        elif not self.replies and scope["method"] == "GET" and scope["path"].endswith("/publishers/google/models"):
            reply = _json({"publisherModels": [{"name": f"publishers/google/models/{m}"} for m in self.models]})
        else:
            reply = self._next()
        headers = [(b"content-type", reply.content_type.encode())] + [
            (k.encode(), v.encode()) for k, v in reply.headers.items()
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for chunk in reply.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if reply.hold:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnects += 1
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _next(self) -> Reply:
        return (
            self.replies.popleft()
            if self.replies
            else Reply(
                status=500, chunks=[b'{"error": {"code": 500, "message": "no reply queued", "status": "INTERNAL"}}']
            )
        )

    # --- cachedContents ---

    def _cached_contents(self, method: str, path: str, query: str, body: Any) -> Reply:
        collection, _, cache_id = path.partition("/cachedContents")
        cache_id = cache_id.removeprefix("/")
        # /v1/projects/<p>/locations/<l> (Vertex) or /v1beta (the Gemini API)
        parts = collection.strip("/").split("/")
        prefix = f"projects/123456789012/locations/{parts[4]}/" if len(parts) >= 5 else ""
        now = datetime.now(UTC)
        if method == "POST" and not cache_id:
            name = f"{prefix}cachedContents/{next(self._ids)}"
            ttl = float(str(body.get("ttl", "3600s")).removesuffix("s"))
            expire = body.get("expireTime") or _time(now + timedelta(seconds=ttl))
            tokens = sum(len(json.dumps(c)) // 4 for c in body.get("contents", []))
            usage: dict[str, Any] = {"totalTokenCount": tokens}
            if prefix:
                usage["textCount"] = tokens * 4
            self.caches[name] = {
                "name": name,
                "model": body["model"],
                **({"displayName": body["displayName"]} if "displayName" in body else {}),
                "createTime": _time(now),
                "updateTime": _time(now),
                "expireTime": expire,
                "usageMetadata": usage,
            }
            return _json(self.caches[name])
        if method == "GET" and not cache_id:
            size = int(dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("pageSize", "100"))
            start = int(dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("pageToken", "0"))
            items = list(self.caches.values())
            out: dict[str, Any] = {"cachedContents": items[start : start + size]} if items[start:] else {}
            if start + size < len(items):
                out["nextPageToken"] = str(start + size)
            return _json(out)
        name = f"{prefix}cachedContents/{cache_id}"
        if name not in self.caches:
            message = f"CachedContent not found (or permission denied): {name}"
            return Reply(
                status=404,
                chunks=[json.dumps({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}).encode()],
            )
        if method == "DELETE":
            del self.caches[name]
            return _json({})
        if method == "PATCH":
            cache = self.caches[name]
            if "ttl" in body:
                cache["expireTime"] = _time(now + timedelta(seconds=float(body["ttl"].removesuffix("s"))))
            if "expireTime" in body:
                cache["expireTime"] = body["expireTime"]
            cache["updateTime"] = _time(now)
        return _json(self.caches[name])

    # --- lifecycle ---

    def start(self) -> None:
        self._server = AppServer(self, lifespan="off").__enter__()
        self.url = self._server.url

    def stop(self) -> None:
        assert self._server is not None
        self._server.__exit__(None, None, None)


async def wait_for(predicate: Any, *, attempts: int = 500) -> None:
    """Poll until ``predicate()`` holds (a bounded number of event-loop turns, no clock)."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")
