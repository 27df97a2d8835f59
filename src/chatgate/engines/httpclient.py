"""The HTTP client chatgate talks to upstreams and to Google with: a small seam over aiohttp.

aiohttp was chosen by measurement (``bench/README.md``): per request it costs a fraction of
httpx's CPU, and its connection pool does not slow down as requests in flight grow. The
relay and the Gemini engine both send through this module, the only one that makes
requests with it, so the client can change again without touching the callers. Failures are
aiohttp's exceptions; turn them into chatgate errors with ``engines/http_errors.py``.

    client = HttpClient(connect_timeout=5, read_timeout=60)
    response = await client.send("POST", url, headers, body)
    try:
        async for piece in response.chunks():
            ...
    finally:
        response.close()
    await client.aclose()

``read_timeout`` bounds the wait for the answer's first byte and every gap between two
pieces after it, not the whole answer (a long stream may take minutes). A client made with
``keepalive=False`` opens a fresh connection for every request: for retrying a request whose
pooled connection turned out to be closed by the server. ``trust_env=True`` sends through
the proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name (minus ``NO_PROXY``): for Google's public hosts,
not for upstreams on a private network. The proxy is looked up once per origin, not per
request: aiohttp's own ``trust_env`` does it (and a ``.netrc`` lookup) on a worker thread for
every request, two thread hops that cost more CPU than the rest of the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

Proxy = tuple[URL | None, aiohttp.BasicAuth | None]
_DIRECT: Proxy = (None, None)


class HttpResponse:
    """An answer whose body has not been read yet; ``close()`` must follow."""

    __slots__ = ("_response", "headers", "reason", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.reason = response.reason or ""
        self.headers: Mapping[str, str] = response.headers  # case-insensitive

    async def read(self) -> bytes:
        """The whole body."""
        return await self._response.read()

    async def read_at_most(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body (enough to describe an error)."""
        return await self._response.content.read(limit)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in, undecoded; bytes that arrived before a
        failure come out before the failure is raised."""
        content = self._response.content
        while True:
            try:
                piece = await content.readany()
            except aiohttp.ClientError:
                # aiohttp raises a connection's failure ahead of the bytes received before
                # it (the last events of a stream cut off); read those first, unchecked.
                rest = content._read_nowait(-1)
                if rest:
                    yield rest
                raise
            if not piece:
                return
            yield piece

    def close(self) -> None:
        """Free the connection: back to the pool if the body was read, else closed."""
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


class HttpClient:
    def __init__(
        self, *, connect_timeout: float, read_timeout: float, keepalive: bool = True, trust_env: bool = False
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._keepalive = keepalive
        self._trust_env = trust_env
        self._proxies: dict[str, Proxy] = {}  # by origin ("https://host:port")
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds a session to the running event loop.
        # Admission bounds concurrency (limit=0: no pool limit); idle connections are dropped
        # after 4 s, below uvicorn's 5 s keep-alive, so the server seldom closes one first.
        if self._keepalive:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=4.0)
        else:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=True)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,
            trust_env=False,  # see _proxy
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            raise_for_status=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None) -> HttpResponse:
        """Send a request and wait for the status line and headers."""
        session = self._session
        if session is None:
            session = self._session = self._open()
        proxy, proxy_auth = self._proxy(url) if self._trust_env else _DIRECT
        response = await session.request(
            method, url, headers=headers, data=body, allow_redirects=False, proxy=proxy, proxy_auth=proxy_auth
        )
        return HttpResponse(response)

    def _proxy(self, url: str) -> Proxy:
        """The environment's proxy for ``url``'s origin (``_DIRECT``: none), read once per origin."""
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.partition('/')[0]}"
        found = self._proxies.get(origin)
        if found is None:
            try:
                found = get_env_proxy_for_url(URL(origin))
            except LookupError:
                found = _DIRECT
            self._proxies[origin] = found
        return found

    async def get(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """A GET read to its end: the status and the body."""
        response = await self.send("GET", url, headers)
        try:
            return response.status, await response.read()
        finally:
            response.close()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
