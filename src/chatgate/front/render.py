"""Errors → HTTP responses, in one place.

Only ``ChatgateError`` subclasses carry their own status; Starlette's routing errors (404,
405) are rendered the same way; anything else is a bug, logged with its traceback and
answered with a generic 500 that leaks nothing.
"""

from __future__ import annotations

import logging

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
        err = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}")
        err.headers.update(exc.headers or {})
        return error_response(err)
    err = ChatgateError(str(exc.detail), status=exc.status_code)
    return error_response(err)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RecursionError):
        # Input nested past what a walk over it can follow; the body check should come first.
        log.warning("%s %s: input nested too deeply (%s)", request.method, request.url.path, exc)
        return error_response(InvalidRequest("the request nests too deeply", code="nesting_too_deep"))
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(ChatgateError("internal error", code="internal_error"))
