"""How an upstream's failures become chatgate errors: transport failures and error answers.

``map_transport_error`` and ``map_stream_error`` sort httpx exceptions (before and during an
answer); ``upstream_error`` turns a non-2xx answer into the error the client sees. Upstream
4xx/5xx bodies that are already OpenAI errors keep their message, type, param, code and
status; others (HTML, text, TGI's ``{"error": "..."}``, FastAPI's ``{"detail": [...]}``,
empty) are wrapped with a short readable reason. A 401/403/407 means the upstream refused
chatgate's own credentials: a 502, and the upstream's message (which may echo the key) is
dropped.
"""

from __future__ import annotations

import httpx
import msgspec

from chatgate.errors import ChatgateError, UpstreamError, UpstreamTimeout, UpstreamUnavailable, error_for_status

def map_transport_error(exc: httpx.HTTPError, where: str, timeout: float) -> ChatgateError:
    """The chatgate error for an httpx failure talking to an upstream (before any answer)."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return UpstreamUnavailable(f"{where} could not be reached ({describe(exc)})")
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        return UpstreamTimeout(f"{where} did not answer within {timeout:g} s")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return UpstreamError(f"{where} closed the connection without answering ({describe(exc)})")
    return UpstreamError(f"{where} failed: {describe(exc)}")


def map_stream_error(exc: httpx.HTTPError, where: str, timeout: float) -> ChatgateError:
    """The chatgate error for an httpx failure while reading an upstream's answer."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{where} sent nothing for {timeout:g} s in the middle of its answer")
    return UpstreamError(f"{where} broke off its answer ({describe(exc)})")


def describe(exc: httpx.HTTPError) -> str:
    # httpx messages carry no URL or header; the class name alone says little.
    text = str(exc).strip()
    kind = type(exc).__name__
    return f"{kind}: {text}" if text else kind


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
    error = _openai_error(body) if "json" in content_type or body[:1] in (b"{", b"[") else None
    if error is not None:
        message, etype, param, code, extra = error
        err = error_for_status(status, message, code=code, param=param, headers=headers, extra=extra)
        if etype:
            err.type = etype  # type: ignore[misc]  # the upstream's own OpenAI error type
        return err
    return error_for_status(status, _wrap_message(where, status, reason, content_type, body), headers=headers)


_OPENAI_ERROR_KEYS = ("message", "type", "param", "code")


def _openai_error(body: bytes) -> tuple[str, str | None, str | None, str | None, dict[str, object]] | None:
    """Message, type, param, code and other fields of an OpenAI-style error body, if it is one.

    Accepts ``{"error": {...}}`` (OpenAI, vLLM, llama.cpp), a list of those (Google), and the
    bare ``{"object": "error", "message": ...}`` that older vLLM sends.
    """
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if not isinstance(doc, dict):
        return None
    error = doc.get("error")
    if not isinstance(error, dict):
        error = doc if doc.get("object") == "error" else None
    if error is None or not isinstance(error.get("message"), str):
        return None
    code = error.get("code")
    param = error.get("param")
    etype = error.get("type")
    extra = {k: v for k, v in error.items() if k not in _OPENAI_ERROR_KEYS and k != "object"}
    return (
        error["message"],
        etype if isinstance(etype, str) and etype else None,
        param if isinstance(param, str) else None,
        str(code) if isinstance(code, (str, int)) and not isinstance(code, bool) else None,
        extra,
    )


def _wrap_message(where: str, status: int, reason: str, content_type: str, body: bytes) -> str:
    head = f"{where} answered HTTP {status} {reason}".rstrip()
    if not body.strip():
        return f"{head} with an empty body"
    detail = _plain_detail(content_type, body)
    if detail:
        return f"{head}: {detail}"
    kind = content_type.split(";")[0].strip() or "unknown"
    return f"{head} with a {kind} body ({len(body)} bytes), not an OpenAI error"


def _plain_detail(content_type: str, body: bytes) -> str | None:
    """A short readable reason from a text body or a non-OpenAI JSON error (TGI, FastAPI)."""
    if "json" in content_type:
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return None
        if isinstance(doc, dict):
            for key in ("error", "detail", "message"):
                value = doc.get(key)
                if isinstance(value, str):
                    return _shorten(value)
                if key == "detail" and isinstance(value, list):
                    return _shorten("; ".join(_fastapi_detail(item) for item in value))
        return None
    if content_type.startswith("text/plain"):
        return _shorten(body.decode("utf-8", "replace"))
    return None


def _fastapi_detail(item: object) -> str:
    if isinstance(item, dict):
        loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        msg = str(item.get("msg", ""))
        return f"{loc}: {msg}" if loc else msg
    return str(item)


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
