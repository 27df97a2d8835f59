"""Google error bodies → chatgate errors, in one place.

Google answers errors as a ``google.rpc.Status`` in ``{"error": {...}}``, sometimes wrapped
in a one-element JSON array, sometimes inside a 200 SSE stream, and from some front-ends as
an HTML page. The HTTP status a client sees follows the canonical code table
(``google/rpc/code.proto``, spec §3.13); Google's message is kept, and its ``status`` name
travels in the error object. ``details`` are not passed on: they can carry debug text
(parts of API keys, internal error strings).

A 401 or 403 is Google refusing chatgate's own credentials or its identity's permissions,
not the client's: its message names service accounts, projects and buckets, so it is only
logged, and the client gets a generic 502 ``upstream_auth_failed``, as from a relay.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec

from chatgate.engines.http_errors import unwrap_error_list
from chatgate.errors import ChatgateError, UpstreamError, error_for_status

HTTP_FOR_STATUS: dict[str, int] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}

log = logging.getLogger(__name__)

AUTH_STATUSES = (401, 403)

_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def auth_failed(status: int, detail: str) -> ChatgateError:
    """Google refused chatgate's credentials: ``detail`` goes to the log, not to the client."""
    log.warning("Gemini refused chatgate's credentials (HTTP %d): %s", status, detail)
    return UpstreamError(
        f"Gemini refused this server's credentials (HTTP {status}); the server log has the details",
        code="upstream_auth_failed",
    )


def status_error(error: dict[str, Any], http_status: int, retry_after: str | None = None) -> ChatgateError:
    """One ``google.rpc.Status`` object → the chatgate error a client should see."""
    name = error.get("status") if isinstance(error.get("status"), str) else None
    code = error.get("code")
    status = HTTP_FOR_STATUS.get(name or "") or (code if isinstance(code, int) and 400 <= code < 600 else None)
    if status is None or status < 400:
        status = http_status if http_status >= 400 else 502
    message = error.get("message") if isinstance(error.get("message"), str) and error.get("message") else None
    if status in AUTH_STATUSES:
        return auth_failed(status, f"{name}: {message}")
    text = f"Gemini: {message}" if message else f"Gemini answered {name or status} without a message"
    return error_for_status(
        status,
        text,
        headers={"Retry-After": retry_after} if retry_after else None,
        extra={"status": name} if name else None,
    )


def rpc_status(value: Any) -> dict[str, Any] | None:
    """The ``error`` object of a parsed body, unwrapping Google's one-element array."""
    value = unwrap_error_list(value)
    if isinstance(value, dict) and isinstance(value.get("error"), dict):
        return value["error"]
    return None


def body_error(http_status: int, body: bytes, retry_after: str | None = None) -> ChatgateError:
    """A failed HTTP response → a chatgate error, whatever the body holds."""
    try:
        error = rpc_status(msgspec.json.decode(body))
    except msgspec.DecodeError:
        error = None
    if error is not None:
        return status_error(error, http_status, retry_after)
    title = _TITLE.search(body)
    snippet = (title.group(1) if title else body[:200]).decode("utf-8", "replace").strip()
    message = f"Gemini answered HTTP {http_status}" + (f": {snippet}" if snippet else "")
    if http_status in AUTH_STATUSES:
        return auth_failed(http_status, message)
    if http_status < 400:
        return UpstreamError(message)
    return error_for_status(http_status, message, headers={"Retry-After": retry_after} if retry_after else None)
