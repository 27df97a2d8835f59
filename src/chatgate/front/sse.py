"""Server-sent events, the one place that writes ``data:`` frames.

Each event is one ``data:`` line of compact JSON (which never contains a newline) and a
blank line; a good stream ends with ``data: [DONE]``, a failed one with a final
``data: {"error": {...}}`` event, after which the connection closes.
"""

from __future__ import annotations

from typing import Any

from chatgate.errors import ChatgateError
from chatgate.protocols.openai import encoder

DONE = b"data: [DONE]\n\n"
MEDIA_TYPE = "text/event-stream"
# Proxies (nginx) must not buffer a stream; clients must not cache it.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode_event(obj: Any) -> bytes:
    return b"data: " + encoder.encode(obj) + b"\n\n"


def encode_error(error: ChatgateError) -> bytes:
    return encode_event(error.to_dict())
