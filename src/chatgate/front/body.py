"""Reading and decoding request bodies: size limit, content type, JSON, the OpenAI request."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Any, TypeVar

import msgspec
import numpy as np
from starlette.requests import Request

from chatgate.errors import (
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o

log = logging.getLogger(__name__)

T = TypeVar("T")

_object_decoder = msgspec.json.Decoder(dict[str, Any])

# How deeply arrays and objects may nest: protobuf's JSON parser (which Vertex uses) stops
# at 100 too. Deeper input would exhaust Python's recursion in the decoder and in every walk
# over schemas and Google extensions after it.
MAX_NESTING = 100
_QUOTE, _BACKSLASH, _OPEN_ARRAY, _OPEN_OBJECT, _CLOSE_ARRAY, _CLOSE_OBJECT = b'"\\[{]}'
_SCAN_CHUNK = 1 << 20


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The raw body, refusing non-JSON content types, bodies over ``limit`` bytes and bodies
    that take longer than ``timeout`` seconds to arrive (a 408: a slow client holds a
    connection and a buffer for as long as it is let)."""
    # Required, not just checked: a web page can POST a body without Content-Type (or as
    # text/plain) to a local server without a CORS preflight; application/json needs one.
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise UnsupportedMediaType("send the body with `Content-Type: application/json`")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {media!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, limit)
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g} s") from None


async def _read(request: Request, limit: int) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


def _param(error: msgspec.ValidationError) -> tuple[str, str | None]:
    """msgspec's ``... - at `$.messages[2].content``` → (message, ``messages[2].content``)."""
    match = _AT.match(str(error))
    assert match is not None
    message, path = match["message"], (match["path"] or "").removeprefix(".")
    missing = _MISSING.search(message)
    if missing:
        path = f"{path}.{missing['field']}" if path else missing["field"]
    return message, path or None


def check_nesting(raw: bytes, limit: int = MAX_NESTING) -> None:
    """A 400 if arrays and objects in ``raw`` nest deeper than ``limit``. Only when there are
    enough brackets to go that deep: the running depth over the brackets outside strings, a
    chunk at a time, in numpy (a body can hold millions of brackets).

    Only quotes, backslashes and brackets are looked at, by position (a regular expression
    over the strings cost about 3 ns a byte, 175 µs on a 50 KB conversation): a quote is
    escaped when an odd run of backslashes ends just before it; a bracket is structure when
    an even number of unescaped quotes come before it."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    data = np.frombuffer(raw, dtype=np.uint8)
    depth, quotes, carried = 0, 0, 0  # over chunks; carried: the backslashes ending the last one
    for start in range(0, len(data), _SCAN_CHUNK):
        chunk = data[start : start + _SCAN_CHUNK]
        at_quote, carried = _unescaped_quotes(chunk, carried)
        # A bracket is structure when an even number of quotes come before it.
        opening = (chunk == _OPEN_ARRAY) | (chunk == _OPEN_OBJECT)
        at_bracket = np.flatnonzero(opening | (chunk == _CLOSE_ARRAY) | (chunk == _CLOSE_OBJECT))
        outside = (np.searchsorted(at_quote, at_bracket) + quotes) % 2 == 0
        steps = np.where(opening[at_bracket[outside]], 1, -1)
        if len(steps):
            running = np.cumsum(steps, dtype=np.int64) + depth
            if int(running.max()) > limit:
                raise InvalidRequest(
                    f"the request body nests arrays and objects deeper than {limit} levels", code="nesting_too_deep"
                )
            depth = int(running[-1])
        quotes += len(at_quote)


def _unescaped_quotes(chunk: np.ndarray, carried: int) -> tuple[np.ndarray, int]:
    """The positions of ``chunk``'s quotes that no backslash escapes (the run of backslashes
    just before one is even; ``carried`` of them end the chunk before), and the length of the
    run ``chunk`` ends with."""
    at_quote = np.flatnonzero(chunk == _QUOTE)
    at_slash = np.flatnonzero(chunk == _BACKSLASH)
    if not len(at_slash):
        return at_quote[(at_quote != 0) | (carried % 2 == 0)], 0
    # Where the run each backslash is in starts, and how long the run is up to it.
    starts = np.ones(len(at_slash), dtype=bool)
    starts[1:] = at_slash[1:] != at_slash[:-1] + 1
    run_start = at_slash[np.maximum.accumulate(np.where(starts, np.arange(len(at_slash)), 0))]
    run_length = at_slash - run_start + 1 + np.where(run_start == 0, carried, 0)
    # The backslash just before each quote, if there is one.
    last = np.maximum(np.searchsorted(at_slash, at_quote) - 1, 0)
    touching = at_slash[last] == at_quote - 1
    before = np.where(touching, run_length[last], np.where(at_quote == 0, carried, 0))
    ends = int(run_length[-1]) if at_slash[-1] == len(chunk) - 1 else 0
    return at_quote[before % 2 == 0], ends


def decode_chat_request(raw: bytes) -> o.ChatCompletionRequest:
    """Decode and validate; every failure is a 400 whose ``param`` names the JSON path."""
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    check_nesting(raw)
    try:
        request = o.request_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        message, param = _param(exc)
        raise InvalidRequest(f"invalid request: {message}" + (f" at `{param}`" if param else ""), param=param) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest("`stream_options` is only allowed when `stream` is true", param="stream_options")
    if log.isEnabledFor(logging.DEBUG):
        unknown = set(_object_decoder.decode(raw)) - o.REQUEST_FIELDS
        if unknown:
            log.debug("ignoring unknown request fields: %s", ", ".join(sorted(unknown)))
    return request


# A key spelled snake_case, somewhere (perhaps inside free-form data: then the slow path is
# only slower).
_SNAKE_KEY = re.compile(rb'"[a-z][a-zA-Z0-9]*_[a-zA-Z0-9_]*"\s*:')


@functools.cache
def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    return msgspec.json.Decoder(kind)


def decode_gemini(raw: bytes, kind: type[T]) -> T:
    """A native Gemini body (``g.GenerateContentRequest``, ``g.CountTokensRequest``), its
    fields spelled camelCase or snake_case as Google takes them; every failure is a 400
    naming the field by its JSON path, in the wire's camelCase."""
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    check_nesting(raw)
    try:
        if _SNAKE_KEY.search(raw) is None:
            return _decoder(kind).decode(raw)  # type: ignore[arg-type]  # a Struct type hashes
        value = msgspec.json.decode(raw)
        if not isinstance(value, dict):
            raise msgspec.ValidationError(f"Expected `object`, got `{type(value).__name__}`")
        return msgspec.convert(g.proto_names(value, kind), kind)  # type: ignore[arg-type]
    except msgspec.ValidationError as exc:
        message, param = _param(exc)
        raise InvalidRequest(f"invalid request: {message}" + (f" at `{param}`" if param else ""), param=param) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def decode_object(raw: bytes) -> dict[str, Any]:
    """A JSON object, for bodies relayed untranslated."""
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    check_nesting(raw)
    try:
        return _object_decoder.decode(raw)
    except msgspec.ValidationError:
        raise InvalidRequest("the request body must be a JSON object") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
