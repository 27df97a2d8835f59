"""Reading and decoding request bodies: size limit, content type, JSON, the OpenAI request."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from starlette.requests import Request

from chatgate.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from chatgate.protocols import openai as o

log = logging.getLogger(__name__)

_object_decoder = msgspec.json.Decoder(dict[str, Any])


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing non-JSON content types and bodies over ``limit`` bytes."""
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaType(f"Content-Type must be application/json, not {media!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
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


def decode_chat_request(raw: bytes) -> o.ChatCompletionRequest:
    """Decode and validate; every failure is a 400 whose ``param`` names the JSON path."""
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
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


def decode_object(raw: bytes) -> dict[str, Any]:
    """A JSON object, for bodies relayed untranslated."""
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return _object_decoder.decode(raw)
    except msgspec.ValidationError:
        raise InvalidRequest("the request body must be a JSON object") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
