"""The pure parts of the upstream package: the URL rule, redaction, and error mapping."""

from __future__ import annotations

import inspect

import aiohttp
import aiohttp.client_exceptions
import pytest

from chatgate.engines.http_errors import (
    OUTCOMES,
    Outcome,
    describe,
    outcome,
    transport_error,
)
from chatgate.engines.upstream.errors import upstream_error
from chatgate.engines.upstream.stream import sniff_usage
from chatgate.engines.upstream.urls import api_urls, redact
from chatgate.errors import (
    ClientError,
    RateLimited,
)


@pytest.mark.parametrize(
    ("url", "base", "root"),
    [
        ("http://h:8000", "http://h:8000/v1", "http://h:8000"),
        ("http://h:8000/", "http://h:8000/v1", "http://h:8000"),
        ("http://h:8000/v1", "http://h:8000/v1", "http://h:8000"),
        ("http://h:8000/v1/", "http://h:8000/v1", "http://h:8000"),
        ("https://proxy/llm/v1", "https://proxy/llm/v1", "https://proxy/llm"),
        ("https://proxy/llm", "https://proxy/llm/v1", "https://proxy/llm"),
        ("https://h/api/v1beta1", "https://h/api/v1beta1", "https://h/api"),
        (
            "http://gw:8080/v1/projects/p/locations/l/endpoints/e",
            "http://gw:8080/v1/projects/p/locations/l/endpoints/e",
            "http://gw:8080",
        ),
    ],
)
def test_url_rule(url: str, base: str, root: str) -> None:
    assert api_urls(url)[:2] == (base, root)


def test_query_kept_apart() -> None:
    assert api_urls("https://h/openai/v1?api-version=2024-10-01") == (
        "https://h/openai/v1",
        "https://h/openai",
        "api-version=2024-10-01",
    )


def test_redact() -> None:
    assert redact("https://user:pw@h:8443/v1?key=s") == "https://h:8443/v1"
    assert redact("http://[::1]:8000/v1") == "http://[::1]:8000/v1"


WHERE = "endpoint 'e' upstream #1"


def test_openai_error_kept_with_status_type_param_code() -> None:
    body = b'{"error": {"message": "m", "type": "invalid_request_error", "param": "n", "code": "bad", "hint": "h"}}'
    err = upstream_error(WHERE, 400, "Bad Request", "application/json", body, None)
    assert isinstance(err, ClientError)
    assert err.status == 400
    assert err.to_dict() == {
        "error": {"message": "m", "type": "invalid_request_error", "param": "n", "code": "bad", "hint": "h"}
    }


@pytest.mark.parametrize(
    "body",
    [
        b'{"object": "error", "message": "m", "type": "BadRequestError", "param": null, "code": 400}',  # older vLLM
        b'[{"error": {"code": 400, "message": "m", "status": "INVALID_ARGUMENT"}}]',  # Google
    ],
)
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


# Bases no client raises as such: mapping them would be the catch-all the table avoids.
ABSTRACT: set[type[BaseException]] = {aiohttp.ClientError, aiohttp.ClientConnectionError, aiohttp.ServerConnectionError}


def _client_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for module, base in ((aiohttp, aiohttp.ClientError), (aiohttp.client_exceptions, aiohttp.ClientError)):
        found += [c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, base)]
    return found


def test_every_client_exception_has_its_own_outcome() -> None:
    """Every exception class of the client is in the table itself (not through a base), so
    a class a new release adds fails here until someone decides what it means."""
    classes = _client_exceptions()
    assert len(classes) > 30
    missing = [c.__qualname__ for c in classes if c not in ABSTRACT and c not in OUTCOMES]
    assert missing == []
    for cls in ABSTRACT:
        with pytest.raises(LookupError):
            outcome(cls.__new__(cls))


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (aiohttp.ClientConnectorError(None, ConnectionRefusedError(111, "Connect call failed")), 503),  # type: ignore[arg-type]
        (aiohttp.ConnectionTimeoutError("slow"), 503),
        (aiohttp.SocketTimeoutError("slow"), 504),
        (aiohttp.ServerDisconnectedError(), 502),
        (aiohttp.ClientPayloadError("cut"), 502),
    ],
)
def test_each_failure_has_one_answer_for_every_engine(exc: BaseException, status: int) -> None:
    assert transport_error(exc, WHERE, 1.0).status == status
    assert transport_error(exc, WHERE, 1.0, answering=True).status == status


def test_connect_failure_description_holds_no_address() -> None:
    exc = aiohttp.ClientConnectorError(None, ConnectionRefusedError(111, "Connect call failed ('10.1.2.3', 8000)"))  # type: ignore[arg-type]
    assert describe(exc) == "ClientConnectorError: Connection refused"
    assert outcome(exc) is Outcome.UNREACHABLE


def test_usage_found_by_scanning_bytes() -> None:
    event = (
        b'data: {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,'
        b' "completion_tokens_details": {"reasoning_tokens": 2}}}\n\n'
    )
    assert sniff_usage(event) == (12, 7)
    assert sniff_usage(b'data: {"choices": [{"delta": {"content": "completion_tokens"}}]}\n\n') is None
