"""An upstream's non-2xx answer → the chatgate error the client sees.

Upstream 4xx/5xx bodies that are already OpenAI errors keep their message, type, param, code,
other fields and status; others (HTML, text, TGI's ``{"error": "..."}``, FastAPI's
``{"detail": [...]}``, empty) are wrapped with a short readable reason. A 401/403/407 means
the upstream refused chatgate's own credentials: a 502, and the upstream's message (which
may echo the key) is dropped. Transport failures are mapped in ``engines/http_errors.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chatgate.engines.http_errors import unwrap_error_list
from chatgate.errors import ChatgateError, UpstreamError, error_for_status


class OpenAIError(msgspec.Struct):
    """The error object of ``{"error": {...}}`` (OpenAI, vLLM, llama.cpp, Google in a list)
    or of older vLLM's bare ``{"object": "error", ...}``."""

    message: str
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class FastAPIDetail(msgspec.Struct):
    msg: str = ""
    loc: list[str | int] = msgspec.field(default_factory=list)


_KNOWN_KEYS = frozenset(("message", "type", "param", "code", "object"))


def upstream_error(
    where: str, status: int, reason: str, content_type: str, body: bytes, retry_after: str | None
) -> ChatgateError:
    """The chatgate error for an upstream's non-2xx answer."""
    headers = {"Retry-After": retry_after} if retry_after else None
    if status in (401, 403, 407):
        # The upstream refused chatgate's credentials, not the client's: a gateway fault.
        return UpstreamError(
            f"{where} refused chatgate's credentials (HTTP {status}); check the endpoint's api_key and headers",
            code="upstream_auth_failed",
        )
    if not 400 <= status < 600:
        return UpstreamError(f"{where} answered HTTP {status} {reason}, not a chat completion")
    doc = _json(body) if "json" in content_type or body[:1] in (b"{", b"[") else None
    found = _openai_error(doc)
    if found is not None:
        error, extra = found
        code = str(error.code) if error.code is not None else None
        err = error_for_status(status, error.message, code=code, param=error.param, headers=headers, extra=extra)
        if error.type:
            err.type = error.type  # type: ignore[misc]  # the upstream's own OpenAI error type
        return err
    return error_for_status(status, _wrap_message(where, status, reason, content_type, body, doc), headers=headers)


def _json(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


def _openai_error(doc: Any) -> tuple[OpenAIError, dict[str, object]] | None:
    """The OpenAI error object in a decoded body, and its fields beyond OpenAI's four."""
    doc = unwrap_error_list(doc)
    if not isinstance(doc, dict):
        return None
    raw = doc.get("error")
    if not isinstance(raw, dict):
        raw = doc if doc.get("object") == "error" else None
    if raw is None:
        return None
    try:
        error = msgspec.convert(raw, OpenAIError)
    except msgspec.ValidationError:
        return None
    return error, {k: v for k, v in raw.items() if k not in _KNOWN_KEYS}


def _wrap_message(where: str, status: int, reason: str, content_type: str, body: bytes, doc: Any) -> str:
    head = f"{where} answered HTTP {status} {reason}".rstrip()
    if not body.strip():
        return f"{head} with an empty body"
    detail = _plain_detail(content_type, body, doc)
    if detail:
        return f"{head}: {detail}"
    kind = content_type.split(";")[0].strip() or "unknown"
    return f"{head} with a {kind} body ({len(body)} bytes), not an OpenAI error"


def _plain_detail(content_type: str, body: bytes, doc: Any) -> str | None:
    """A short readable reason from a text body or a non-OpenAI JSON error (TGI, FastAPI)."""
    if "json" in content_type:
        if not isinstance(doc, dict):
            return None
        for key in ("error", "detail", "message"):
            value = doc.get(key)
            if isinstance(value, str):
                return _shorten(value)
            if key == "detail" and isinstance(value, list):
                try:
                    details = msgspec.convert(value, list[FastAPIDetail])
                except msgspec.ValidationError:
                    return None
                return _shorten("; ".join(_fastapi_detail(d) for d in details))
        return None
    if content_type.startswith("text/plain"):
        return _shorten(body.decode("utf-8", "replace"))
    return None


def _fastapi_detail(detail: FastAPIDetail) -> str:
    loc = ".".join(str(p) for p in detail.loc if p != "body")
    return f"{loc}: {detail.msg}" if loc else detail.msg


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
