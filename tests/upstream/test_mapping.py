"""The pure parts of the upstream module: the URL rule, redaction, and error mapping."""

from __future__ import annotations

import inspect

import httpx
import pytest

from chatgate.engines.upstream import api_urls, redact
from chatgate.engines.upstream_errors import map_stream_error, map_transport_error, upstream_error
from chatgate.errors import ChatgateError, ClientError, RateLimited, UpstreamError, UpstreamTimeout, UpstreamUnavailable


@pytest.mark.parametrize(("url", "base", "root"), [
    ("http://h:8000", "http://h:8000/v1", "http://h:8000"),
    ("http://h:8000/", "http://h:8000/v1", "http://h:8000"),
    ("http://h:8000/v1", "http://h:8000/v1", "http://h:8000"),
    ("http://h:8000/v1/", "http://h:8000/v1", "http://h:8000"),
    ("https://proxy/llm/v1", "https://proxy/llm/v1", "https://proxy/llm"),
    ("https://proxy/llm", "https://proxy/llm/v1", "https://proxy/llm"),
    ("https://h/api/v1beta1", "https://h/api/v1beta1", "https://h/api"),
    ("http://gw:8080/v1/projects/p/locations/l/endpoints/e",
     "http://gw:8080/v1/projects/p/locations/l/endpoints/e", "http://gw:8080"),
])
def test_url_rule(url: str, base: str, root: str) -> None:
    assert api_urls(url)[:2] == (base, root)


def test_query_kept_apart() -> None:
    assert api_urls("https://h/openai/v1?api-version=2024-10-01") == (
        "https://h/openai/v1", "https://h/openai", "api-version=2024-10-01")


def test_redact() -> None:
    assert redact("https://user:pw@h:8443/v1?key=s") == "https://h:8443/v1"
    assert redact("http://[::1]:8000/v1") == "http://[::1]:8000/v1"


WHERE = "endpoint 'e' upstream #1"


def test_openai_error_kept_with_status_type_param_code() -> None:
    body = b'{"error": {"message": "m", "type": "invalid_request_error", "param": "n", "code": "bad", "hint": "h"}}'
    err = upstream_error(WHERE, 400, "Bad Request", "application/json", body, None)
    assert isinstance(err, ClientError)
    assert err.status == 400
    assert err.to_dict() == {"error": {"message": "m", "type": "invalid_request_error", "param": "n",
                                       "code": "bad", "hint": "h"}}


@pytest.mark.parametrize("body", [
    b'{"object": "error", "message": "m", "type": "BadRequestError", "param": null, "code": 400}',  # older vLLM
    b'[{"error": {"code": 400, "message": "m", "status": "INVALID_ARGUMENT"}}]',  # Google
])
def test_openai_like_errors(body: bytes) -> None:
    err = upstream_error(WHERE, 400, "Bad Request", "application/json", body, None)
    assert err.message == "m" and err.code == "400" and err.status == 400


def test_429_keeps_retry_after() -> None:
    err = upstream_error(WHERE, 429, "Too Many Requests", "text/plain", b"busy", "12")
    assert isinstance(err, RateLimited)
    assert err.headers["Retry-After"] == "12"
    assert err.type == "rate_limit_error"


@pytest.mark.parametrize("status", [401, 403, 407])
def test_upstream_auth_failure_is_a_gateway_error(status: int) -> None:
    err = upstream_error(WHERE, status, "", "application/json", b'{"error": {"message": "key sk-123 invalid"}}', None)
    assert err.status == 502 and "sk-123" not in err.message


def test_fastapi_validation_detail() -> None:
    body = b'{"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]}'
    err = upstream_error(WHERE, 422, "Unprocessable Entity", "application/json", body, None)
    assert err.status == 422 and "messages: Field required" in err.message


def test_unexpected_status_is_502() -> None:
    assert upstream_error(WHERE, 302, "Found", "text/html", b"", None).status == 502


def test_every_httpx_error_is_mapped() -> None:
    """A new httpx exception class must land on a chatgate error, never escape as itself."""
    classes = [c for _, c in inspect.getmembers(httpx, inspect.isclass) if issubclass(c, httpx.HTTPError)]
    assert len(classes) > 10
    for cls in classes:
        exc = cls("boom") if cls is not httpx.HTTPStatusError else None
        if exc is None:
            continue
        assert isinstance(map_transport_error(exc, WHERE, 1.0), UpstreamError), cls
        assert isinstance(map_stream_error(exc, WHERE, 1.0), ChatgateError), cls
    assert isinstance(map_transport_error(httpx.ConnectError("x"), WHERE, 1.0), UpstreamUnavailable)
    assert isinstance(map_transport_error(httpx.ReadTimeout("x"), WHERE, 1.0), UpstreamTimeout)
    assert isinstance(map_stream_error(httpx.ReadTimeout("x"), WHERE, 1.0), UpstreamTimeout)
