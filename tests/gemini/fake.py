"""A fake Gemini server: a real HTTP server on 127.0.0.1 (``tests.serve.AppServer``).

Tests queue replies (``reply(...)``, ``replay(recording)``); every request is recorded
(method, path, query, headers, JSON body) for assertions. A reply may ``hold`` the stream
open after its chunks until the client disconnects, which the server then records.
"""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass, field
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
        reply = (
            self.replies.popleft()
            if self.replies
            else Reply(
                status=500, chunks=[b'{"error": {"code": 500, "message": "no reply queued", "status": "INTERNAL"}}']
            )
        )
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
