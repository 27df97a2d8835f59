"""HTTP client failures → chatgate errors: one table for every engine that talks HTTP.

The relay and the Gemini engine share one client (aiohttp, ``engines/httpclient.py``); each
concrete exception class it raises is sorted into one of four outcomes here:

- ``UNREACHABLE``: no connection (refused, DNS, TLS handshake, connect or pool timeout): 503;
- ``TIMEOUT``: connected, but nothing came within the read (or write) timeout: 504;
- ``CLOSED``: the connection broke (closed before or during the answer): 502;
- ``BROKEN``: the request could not be made or the answer not read as HTTP (a bad URL, a
  protocol violation, a redirect we do not follow, a body that does not decode): 502.

There is no catch-all: a class missing from the table (an abstract base, or one a new
library release adds) is a ``LookupError``, and ``tests/upstream/test_mapping.py`` walks
every exception class of the library so that a new one fails a test, not a request.
Google's one-element error array is unwrapped here too (``unwrap_error_list``), for both.
"""

from __future__ import annotations

import enum
import os
from typing import Any

import aiohttp
import aiohttp.client_exceptions

from chatgate.errors import (
    ChatgateError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)


class Outcome(enum.Enum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    CLOSED = "closed"
    BROKEN = "broken"


OUTCOMES: dict[type[BaseException], Outcome] = {
    aiohttp.ClientConnectorError: Outcome.UNREACHABLE,
    aiohttp.ClientConnectorDNSError: Outcome.UNREACHABLE,
    aiohttp.ClientProxyConnectionError: Outcome.UNREACHABLE,
    aiohttp.client_exceptions.UnixClientConnectorError: Outcome.UNREACHABLE,
    aiohttp.ClientSSLError: Outcome.UNREACHABLE,
    aiohttp.ClientConnectorSSLError: Outcome.UNREACHABLE,
    aiohttp.ClientConnectorCertificateError: Outcome.UNREACHABLE,
    aiohttp.ServerFingerprintMismatch: Outcome.UNREACHABLE,
    aiohttp.ConnectionTimeoutError: Outcome.UNREACHABLE,
    aiohttp.ClientHttpProxyError: Outcome.UNREACHABLE,
    aiohttp.SocketTimeoutError: Outcome.TIMEOUT,
    aiohttp.ServerTimeoutError: Outcome.TIMEOUT,
    aiohttp.ServerDisconnectedError: Outcome.CLOSED,
    aiohttp.ClientConnectionResetError: Outcome.CLOSED,
    aiohttp.ClientOSError: Outcome.CLOSED,
    aiohttp.ClientPayloadError: Outcome.CLOSED,
    aiohttp.UploadAbortedError: Outcome.CLOSED,
    aiohttp.ClientResponseError: Outcome.BROKEN,
    aiohttp.ContentTypeError: Outcome.BROKEN,
    aiohttp.WSServerHandshakeError: Outcome.BROKEN,
    aiohttp.TooManyRedirects: Outcome.BROKEN,
    aiohttp.InvalidURL: Outcome.BROKEN,
    aiohttp.InvalidUrlClientError: Outcome.BROKEN,
    aiohttp.RedirectClientError: Outcome.BROKEN,
    aiohttp.NonHttpUrlClientError: Outcome.BROKEN,
    aiohttp.InvalidUrlRedirectClientError: Outcome.BROKEN,
    aiohttp.NonHttpUrlRedirectClientError: Outcome.BROKEN,
}

# What callers catch: every exception the client raises for a failed exchange.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError,)


def outcome(exc: BaseException) -> Outcome:
    """The outcome of a client exception: its own class, else the nearest mapped base."""
    for cls in type(exc).__mro__:
        found = OUTCOMES.get(cls)
        if found is not None:
            return found
    raise LookupError(f"no outcome for {type(exc).__qualname__}: add it to OUTCOMES") from exc


def transport_error(exc: BaseException, where: str, timeout: float, *, answering: bool = False) -> ChatgateError:
    """The chatgate error for a failed exchange with ``where`` (``Gemini``, ``endpoint 'e'
    upstream #1``); ``answering``: the answer had started when it failed."""
    kind = outcome(exc)
    if kind is Outcome.UNREACHABLE:
        return UpstreamUnavailable(f"{where} could not be reached ({describe(exc)})")
    if kind is Outcome.TIMEOUT:
        if answering:
            return UpstreamTimeout(f"{where} sent nothing for {timeout:g} s in the middle of its answer")
        return UpstreamTimeout(f"{where} did not answer within {timeout:g} s")
    if kind is Outcome.CLOSED:
        if answering:
            return UpstreamError(f"{where} broke off its answer ({describe(exc)})")
        return UpstreamError(f"{where} closed the connection without answering ({describe(exc)})")
    return UpstreamError(f"{where} failed: {describe(exc)}")


def describe(exc: BaseException) -> str:
    """The class and a short reason, never a URL: an upstream URL may carry a key.

    aiohttp's messages often hold the URL, so only the OS reason is kept."""
    kind = type(exc).__name__
    if isinstance(exc, aiohttp.ClientError):
        errno = getattr(exc, "errno", None)
        text = os.strerror(errno) if isinstance(errno, int) and errno else ""
        if not text and isinstance(exc, aiohttp.ServerDisconnectedError):
            text = "the server closed the connection"
    else:
        text = str(exc).strip()
    return f"{kind}: {text}" if text else kind


def unwrap_error_list(doc: Any) -> Any:
    """Google sends an error body as a one-element JSON array: the element, else ``doc``."""
    if isinstance(doc, list) and len(doc) == 1:
        return doc[0]
    return doc
