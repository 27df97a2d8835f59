"""The errors chatgate raises, and what each one becomes on the wire.

Every failure a client can cause or see is one of these classes; the front renders them
(``front/render.py``) as OpenAI's ``{"error": {"message", "type", "param", "code"}}`` with
the class's HTTP status. Anything else that escapes is a bug: a logged 500.

    ChatgateError                      500 api_error
    ├── ClientError                    4xx: the request is at fault
    │   ├── InvalidRequest             400 invalid_request_error   (param names the field)
    │   │   ├── ContextLengthExceeded  400 code=context_length_exceeded
    │   │   └── Unsupported            400 a valid feature the chosen model cannot honour
    │   ├── Unauthenticated            401 authentication_error
    │   ├── PermissionDenied           403 permission_error
    │   ├── NotFound                   404 not_found_error
    │   ├── MethodNotAllowed           405
    │   ├── RequestTimeout             408 the body did not arrive in time
    │   ├── PayloadTooLarge            413
    │   ├── UnsupportedMediaType       415
    │   ├── RateLimited                429 rate_limit_error        (retry_after seconds)
    │   └── ResourceExhausted          429 code=cache_memory_exhausted (retrying will not help
    │                                      until something is freed)
    ├── DeadlineExceeded               504 the request ran past ``server.request_timeout``
    ├── ShuttingDown                   503 the server stopped before the request was done
    └── UpstreamError                  5xx, or the status an upstream answered with
        ├── UpstreamUnavailable        503 (also 502 for a bad gateway)
        └── UpstreamTimeout            504
"""

from __future__ import annotations

from typing import ClassVar


class ChatgateError(Exception):
    """Base class. Subclasses set ``status``, ``type`` and usually ``code``."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}
        # Fields beyond OpenAI's four, kept in the error object (Google's "status", say).
        self.extra = extra or {}
        if status is not None:
            self.status = status  # type: ignore[misc]  # an instance may refine its class's status

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        body.update(self.extra)
        return {"error": body}


class ClientError(ChatgateError):
    status = 400
    type = "invalid_request_error"


class InvalidRequest(ClientError):
    status = 400


class ContextLengthExceeded(InvalidRequest):
    default_code = "context_length_exceeded"


class Unsupported(InvalidRequest):
    default_code = "unsupported_parameter"


class Unauthenticated(ClientError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(ClientError):
    status = 403
    type = "permission_error"
    default_code = "permission_denied"


class NotFound(ClientError):
    status = 404
    type = "not_found_error"
    default_code = "not_found"


class MethodNotAllowed(ClientError):
    status = 405
    default_code = "method_not_allowed"


class RequestTimeout(ClientError):
    status = 408
    default_code = "request_timeout"


class PayloadTooLarge(ClientError):
    status = 413
    default_code = "request_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    default_code = "unsupported_media_type"


class RateLimited(ClientError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs: object) -> None:
        headers = {"Retry-After": str(max(1, round(retry_after)))}
        super().__init__(message, headers=headers, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ResourceExhausted(ClientError):
    """Keeping what was asked would exceed a configured memory bound (``local.cache_memory``)."""

    status = 429
    type = "rate_limit_error"
    default_code = "cache_memory_exhausted"


class DeadlineExceeded(ChatgateError):
    """The whole request (queue, generation, relay) ran past the server's deadline."""

    status = 504
    default_code = "deadline_exceeded"


class ShuttingDown(ChatgateError):
    """The server is stopping (SIGTERM) and the request did not finish in the grace period."""

    status = 503
    default_code = "server_shutting_down"


class UpstreamError(ChatgateError):
    """A model server (Gemini, a self-deployed endpoint) failed or refused."""

    status = 502
    type = "api_error"
    default_code = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    default_code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    default_code = "upstream_timeout"


# The OpenAI error type a client expects for an HTTP status, for errors whose status is
# decided at run time (an upstream's 4xx passed through, a Google status mapped).
TYPE_FOR_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_for_status(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> ChatgateError:
    """An error carrying an arbitrary HTTP status (for statuses learnt from an upstream)."""
    cls: type[ChatgateError]
    if status == 429:
        limited = RateLimited(message, code=code, param=param, extra=extra)
        limited.headers.update(headers or {})
        return limited
    if status == 504:
        cls = UpstreamTimeout
    elif status in (502, 503):
        cls = UpstreamUnavailable
    elif 400 <= status < 500:
        cls = ClientError
    else:
        cls = UpstreamError
    err = cls(message, code=code, param=param, status=status, headers=headers, extra=extra)
    if 400 <= status < 500:
        err.type = TYPE_FOR_STATUS.get(status, "invalid_request_error")  # type: ignore[misc]
    return err
