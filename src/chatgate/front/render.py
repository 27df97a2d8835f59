"""Errors → HTTP responses, in one place.

Only ``ChatgateError`` subclasses carry their own status; Starlette's routing errors (404,
405) are rendered the same way; anything else is a bug, logged with its traceback and
answered with a generic 500 that leaks nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from chatgate.errors import ChatgateError, InvalidRequest, MethodNotAllowed, NotFound
from chatgate.protocols.openai import encoder

log = logging.getLogger("chatgate")


def error_response(error: ChatgateError) -> Response:
    headers = dict(error.headers)
    if 400 <= error.status < 500 and error.status not in (408, 409, 429):
        # A deterministic refusal: tell the OpenAI SDK not to retry it.
        headers.setdefault("x-should-retry", "false")
    return Response(
        encoder.encode(error.to_dict()), status_code=error.status, media_type="application/json", headers=headers
    )


# google.rpc.Code names by HTTP status, as Google's APIs answer them.
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_status(status: int) -> str:
    return GOOGLE_STATUS.get(status) or ("INVALID_ARGUMENT" if status < 500 else "INTERNAL")


def google_error_response(error: ChatgateError) -> Response:
    """``error`` in Google's shape, for the native Gemini routes:
    ``{"error": {"code", "message", "status"}}``; a Google error relayed keeps its own status name."""
    name = error.extra.get("status")
    body = {
        "error": {
            "code": error.status,
            "message": error.message,
            "status": name if isinstance(name, str) else google_status(error.status),
        }
    }
    return Response(
        encoder.encode(body), status_code=error.status, media_type="application/json", headers=error.headers
    )


Handler = Callable[[Request], Awaitable[Response]]


def google_errors(handler: Handler) -> Handler:
    """A route that answers its errors in Google's shape instead of OpenAI's."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ChatgateError as exc:
            if exc.status >= 500:
                log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.message)
            return google_error_response(exc)
        except RecursionError:
            return google_error_response(InvalidRequest("the request nests too deeply", code="nesting_too_deep"))

    return wrapped


async def on_chatgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChatgateError)
    if exc.status >= 500:
        log.warning("%s %s -> %d %s", request.method, request.url.path, exc.status, exc.message)
    return error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no route for {request.method} {request.url.path}", code="unknown_url"))
    if exc.status_code == 405:
        refused = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}")
        refused.headers.update(exc.headers or {})
        return error_response(refused)
    return error_response(ChatgateError(str(exc.detail), status=exc.status_code))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RecursionError):
        # Input nested past what a walk over it can follow; the body check should come first.
        log.warning("%s %s: input nested too deeply (%s)", request.method, request.url.path, exc)
        return error_response(InvalidRequest("the request nests too deeply", code="nesting_too_deep"))
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(ChatgateError("internal error", code="internal_error"))
