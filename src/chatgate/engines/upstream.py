"""OpenAI-compatible upstreams: the model servers behind a self-deployed endpoint.

An endpoint (``[endpoints.<id>]`` with ``upstreams``) is one model served by one or more
replicas. chatgate relays OpenAI request bodies to them untranslated and their answers back.

URL rule. Each upstream URL names an OpenAI API base, given with or without its version:

- path ending in a version segment (``/v1``, ``/v1beta1``): used as the API base;
- path containing ``/endpoints/<id>`` (a Vertex-style endpoint, such as another chatgate):
  used as the API base;
- anything else: ``/v1`` is appended (``http://host:8000`` means ``http://host:8000/v1``).

Chat requests go to ``<base>/chat/completions``, the model listing to ``<base>/models``.
``health_path`` is resolved against the server root: the URL without its version segment
(``http://host:8000/v1`` → ``http://host:8000``), or the origin for Vertex-style URLs.

Behaviour, per endpoint:

- Balancing: least outstanding requests; ties go round robin.
- Health: a replica that refuses a connection (or cannot be reached within
  ``connect_timeout``), or whose probe fails (no answer, or a 5xx), is ejected; probes every
  ``health_interval`` seconds readmit it as soon as it answers again.
- Retry: a request whose replica failed before answering anything (connection refused or
  closed before the status line) is retried once on another replica. A timeout is not
  retried: the upstream may be generating, and the client asked for at most ``timeout``.
- Admission: at most ``max_concurrency`` requests in flight and ``queue_size`` waiting;
  beyond that ``RateLimited`` (429, ``Retry-After``).
- Errors: only ``chatgate.errors`` types leave this module (mapped in ``upstream_errors``).
  Upstream credentials never appear in a message or a log line: replicas are named
  ``endpoint 'id' upstream #n`` to clients, and by their URL without user info or query
  in logs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from typing import Any, AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec

from chatgate.config import EndpointSettings
from chatgate.engines.upstream_errors import describe, map_stream_error, map_transport_error, upstream_error
from chatgate.errors import ChatgateError, RateLimited, UpstreamError, UpstreamUnavailable

log = logging.getLogger("chatgate.upstream")

_VERSION_SEGMENT = re.compile(r"/v\d+(?:(?:alpha|beta)\d*)?$")
_MAX_ERROR_BODY = 64 * 1024  # bytes of an upstream error body worth reading
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")


# --- URLs -------------------------------------------------------------------------------


def api_urls(url: str) -> tuple[str, str, str]:
    """``(api_base, server_root, query)`` for an upstream URL, following the module's URL rule.

    A query (``?api-version=...``) is kept apart, to go after each API path.
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if _VERSION_SEGMENT.search(path):
        base, root = path, _VERSION_SEGMENT.sub("", path)
    elif "/endpoints/" in path:
        base, root = path, ""
    else:
        base, root = path + "/v1", path
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return origin + base, origin + root, parts.query


def redact(url: str) -> str:
    """The URL without user info and query: fit for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- replicas and admission --------------------------------------------------------------


class Replica:
    """One upstream server; ``outstanding`` counts requests sent and not yet finished."""

    def __init__(self, endpoint_id: str, index: int, url: str, health_path: str) -> None:
        self.base, root, query = api_urls(url)
        query = "?" + query if query else ""
        self.chat_url = httpx.URL(self.base + "/chat/completions" + query)  # parsed once
        self.models_url = self.base + "/models" + query
        self.health_url = root + "/" + health_path.lstrip("/")
        self.name = f"endpoint {endpoint_id!r} upstream #{index + 1}"  # shown to clients
        self.label = redact(self.base)  # shown in logs
        self.outstanding = 0
        self.healthy = True
        self.last_error: str | None = None


class _Gate:
    """A concurrency limit with a bounded wait queue; a full queue is a 429."""

    def __init__(self, endpoint_id: str, limit: int, queue_size: int) -> None:
        self._endpoint_id = endpoint_id
        self._slots = asyncio.Semaphore(limit)
        self._queue_size = queue_size
        self._waiting = 0

    async def acquire(self) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        if self._waiting >= self._queue_size:
            raise RateLimited(
                f"endpoint {self._endpoint_id!r} is at capacity: too many concurrent requests; retry later",
                retry_after=1.0,
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1

    def release(self) -> None:
        self._slots.release()


# --- one relayed answer ------------------------------------------------------------------


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _WithUsage(msgspec.Struct):
    usage: _Usage | None = None


_usage_decoder = msgspec.json.Decoder(_WithUsage)


class UpstreamResponse:
    """An upstream's successful answer, held open until read or closed.

    ``is_stream`` tells an SSE stream (iterate ``events()``) from a JSON body (``read()``).
    Either way ``aclose()`` must follow: it ends the upstream request if it is still running
    and frees the replica's and the endpoint's slots. ``usage`` is filled as it goes by.
    """

    def __init__(self, endpoint: UpstreamEndpoint, replica: Replica, response: httpx.Response) -> None:
        self._endpoint = endpoint
        self.endpoint_id = endpoint.endpoint_id
        self._replica = replica
        self._response = response
        self._started = time.monotonic()
        self._closed = False
        self._outcome = "ok"
        self.status = response.status_code
        self.media_type = response.headers.get("content-type", "application/json")
        self.is_stream = self.media_type.startswith("text/event-stream")
        self.usage: tuple[int, int] | None = None

    async def read(self) -> bytes:
        """The whole JSON body."""
        try:
            body = await self._response.aread()
        except httpx.HTTPError as exc:
            self._outcome = type(exc).__name__
            raise map_stream_error(exc, self._replica.name, self._endpoint.timeout) from exc
        if b'"usage"' in body:
            self._note_usage(body)
        return body

    async def events(self) -> AsyncIterator[bytes]:
        """The SSE bytes as they arrive, cut only at event boundaries.

        A piece that ends inside an event is held until the event is complete, so that an
        error event after a failure never lands in the middle of another one. Failures are
        raised as chatgate errors.
        """
        pending = b""
        try:
            async for chunk in self._response.aiter_raw():
                if pending:
                    chunk = pending + chunk
                    pending = b""
                if not chunk.endswith(_EVENT_ENDS):
                    cut = max(chunk.rfind(end) + len(end) if end in chunk else 0 for end in _EVENT_ENDS)
                    chunk, pending = chunk[:cut], chunk[cut:]
                    if not chunk:
                        continue
                if b'"completion_tokens"' in chunk:
                    self._note_stream_usage(chunk)
                yield chunk
        except httpx.HTTPError as exc:
            self._outcome = type(exc).__name__
            raise map_stream_error(exc, self._replica.name, self._endpoint.timeout) from exc
        if pending:
            yield pending

    def _note_usage(self, body: bytes) -> None:
        try:
            usage = _usage_decoder.decode(body).usage
        except msgspec.DecodeError:
            return
        if usage is not None:
            self.usage = (usage.prompt_tokens, usage.completion_tokens)

    def _note_stream_usage(self, chunk: bytes) -> None:
        for line in chunk.splitlines():
            if line.startswith(b"data:") and b'"completion_tokens"' in line:
                self._note_usage(line[5:])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._response.aclose()
        finally:
            self._endpoint._finished(self._replica)
            log.info(
                "endpoint=%s upstream=%s status=%d outcome=%s seconds=%.3f usage=%s",
                self._endpoint.endpoint_id, self._replica.label, self.status, self._outcome,
                time.monotonic() - self._started, self.usage,
            )


# --- the endpoint ------------------------------------------------------------------------


class UpstreamEndpoint:
    """A self-deployed endpoint served by OpenAI-compatible upstream replicas.

    ``start()`` begins health probing, ``aclose()`` stops it and closes connections.
    ``open(body)`` sends one chat request and returns the upstream's answer
    (``UpstreamResponse``) or raises a ``ChatgateError``.
    """

    def __init__(self, endpoint_id: str, settings: EndpointSettings) -> None:
        if not settings.upstreams:
            raise ValueError(f"endpoint {endpoint_id!r} has no upstreams")
        self.endpoint_id = endpoint_id
        self.settings = settings
        self.default_model: str | None = settings.model
        self.timeout = settings.timeout
        self.replicas = [
            Replica(endpoint_id, i, url, settings.health_path) for i, url in enumerate(settings.upstreams)
        ]
        self._gate = _Gate(endpoint_id, settings.max_concurrency, settings.queue_size)
        self._turn = itertools.count()
        # Case-insensitive, so the configured headers replace ours rather than doubling them.
        self._headers = httpx.Headers({
            "Accept": "application/json, text/event-stream",
            # Relay bytes as they come: no decompression on the way.
            "Accept-Encoding": "identity",
            "User-Agent": "chatgate",
        })
        if settings.api_key:
            self._headers["Authorization"] = f"Bearer {settings.api_key}"
        self._headers.update(settings.headers)
        self._post_headers = self._headers.copy()
        self._post_headers.setdefault("Content-Type", "application/json")
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.connect_timeout, settings.timeout)),
            # The gate bounds concurrency; the pool only keeps connections alive.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=settings.max_concurrency),
            follow_redirects=False,
            trust_env=False,
        )
        self._prober: asyncio.Task[None] | None = None
        # httpx logs every request's full URL at INFO; an upstream URL may carry a key.
        if logging.getLogger("httpx").getEffectiveLevel() < logging.WARNING:
            logging.getLogger("httpx").setLevel(logging.WARNING)

    # lifecycle

    async def start(self) -> None:
        if self._prober is None:
            self._prober = asyncio.create_task(self._probe_forever(), name=f"probe {self.endpoint_id}")

    async def aclose(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            try:
                await self._prober
            except asyncio.CancelledError:
                pass
            self._prober = None
        await self._client.aclose()

    # relaying

    async def open(self, body: bytes) -> UpstreamResponse:
        """Send a chat request body; the upstream's 2xx answer, or a raised ``ChatgateError``."""
        await self._gate.acquire()
        try:
            replica, response = await self._send(body)
        except BaseException:
            self._gate.release()
            raise
        try:
            await self._check(replica, response)
        except BaseException:
            await response.aclose()
            self._finished(replica)
            raise
        return UpstreamResponse(self, replica, response)

    async def _send(self, body: bytes) -> tuple[Replica, httpx.Response]:
        tried: list[Replica] = []
        failure: ChatgateError | None = None
        for _ in range(2):  # the first try, and one retry elsewhere
            replica = self._pick(tried)
            if replica is None:
                break
            tried.append(replica)
            replica.outstanding += 1
            # Built directly: the client has no defaults to merge in, and merging costs.
            request = httpx.Request("POST", replica.chat_url, headers=self._post_headers, content=body)
            try:
                return replica, await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                replica.outstanding -= 1
                failure = map_transport_error(exc, replica.name, self.timeout)
                self._eject(replica, f"could not be reached ({describe(exc)})")
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                # Closed before the status line: the request was not answered; try elsewhere.
                replica.outstanding -= 1
                failure = map_transport_error(exc, replica.name, self.timeout)
            except httpx.HTTPError as exc:
                replica.outstanding -= 1
                raise map_transport_error(exc, replica.name, self.timeout) from exc
            except BaseException:
                replica.outstanding -= 1
                raise
        if failure is None or not any(r.healthy for r in self.replicas):
            raise self._all_down(failure)
        raise failure

    def _pick(self, exclude: list[Replica]) -> Replica | None:
        """The healthy replica with the fewest outstanding requests; ties round robin."""
        n = len(self.replicas)
        start = next(self._turn) % n
        best: Replica | None = None
        for i in range(n):
            replica = self.replicas[(start + i) % n]
            if not replica.healthy or replica in exclude:
                continue
            if best is None or replica.outstanding < best.outstanding:
                best = replica
        return best

    def _all_down(self, failure: ChatgateError | None) -> UpstreamUnavailable:
        n = len(self.replicas)
        what = "its upstream is" if n == 1 else f"all {n} upstreams are"
        reasons = "; ".join(
            f"upstream #{i + 1}: {r.last_error}" for i, r in enumerate(self.replicas) if r.last_error
        ) or (failure.message if failure is not None else "")
        message = f"endpoint {self.endpoint_id!r} is unavailable: {what} down"
        if reasons:
            message += f" ({reasons})"
        message += f"; health checks run every {self.settings.health_interval:g} s"
        retry = max(1, round(self.settings.health_interval))
        return UpstreamUnavailable(message, headers={"Retry-After": str(retry)})

    async def _check(self, replica: Replica, response: httpx.Response) -> None:
        """Raise for an answer that is not a relayable 2xx chat completion."""
        status = response.status_code
        content_type = response.headers.get("content-type", "")
        if 200 <= status < 300 and (
            not content_type or "json" in content_type or content_type.startswith("text/event-stream")
        ):
            return
        body = b""
        try:
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) >= _MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass  # what arrived is enough to describe the failure
        if 200 <= status < 300:
            kind = content_type.split(";")[0]
            raise UpstreamError(
                f"{replica.name} answered with {kind}, not JSON: is it an OpenAI-compatible server?"
            )
        log.info("endpoint=%s upstream=%s answered HTTP %d", self.endpoint_id, replica.label, status)
        raise upstream_error(
            replica.name, status, response.reason_phrase, content_type, body, response.headers.get("retry-after")
        )

    def _finished(self, replica: Replica) -> None:
        replica.outstanding -= 1
        self._gate.release()

    # health

    def _eject(self, replica: Replica, reason: str) -> None:
        replica.last_error = reason
        if replica.healthy:
            replica.healthy = False
            log.warning("endpoint=%s upstream=%s ejected: %s", self.endpoint_id, replica.label, reason)

    def _readmit(self, replica: Replica) -> None:
        if not replica.healthy:
            replica.healthy = True
            log.warning("endpoint=%s upstream=%s readmitted", self.endpoint_id, replica.label)

    async def _probe_forever(self) -> None:
        while True:
            try:
                await asyncio.gather(*(self.probe(replica) for replica in self.replicas))
            except Exception:  # a bug here must not end probing for good
                log.exception("endpoint=%s health check failed unexpectedly", self.endpoint_id)
            await asyncio.sleep(self.settings.health_interval)

    async def probe(self, replica: Replica) -> bool:
        """Check one replica now; eject or readmit it. Any answer below 500 means alive."""
        try:
            response = await self._client.get(replica.health_url, headers=self._headers)
        except httpx.HTTPError as exc:
            self._eject(replica, f"health check failed ({describe(exc)})")
            return False
        if response.status_code >= 500:
            self._eject(replica, f"health check answered HTTP {response.status_code}")
            return False
        self._readmit(replica)
        return True

    def status(self) -> list[dict[str, Any]]:
        """Each replica's state, for readiness checks and tests (no URLs: they may hold secrets)."""
        return [
            {"upstream": i + 1, "healthy": r.healthy, "outstanding": r.outstanding, "last_error": r.last_error}
            for i, r in enumerate(self.replicas)
        ]

    # listing

    async def models(self) -> list[dict[str, Any]]:
        """What the endpoint serves, as OpenAI model objects.

        The upstream's own listing, with the configured default model first; the default
        alone when no upstream answers. With neither, ``UpstreamUnavailable``.
        """
        listed: list[dict[str, Any]] = []
        failure: str | None = None
        for replica in sorted(self.replicas, key=lambda r: not r.healthy):
            try:
                response = await self._client.get(replica.models_url, headers=self._headers)
                if response.status_code == 200:
                    listed = _model_objects(response.content, self.endpoint_id)
                    break
                failure = f"{replica.name} answered HTTP {response.status_code} to a model listing"
            except httpx.HTTPError as exc:
                failure = map_transport_error(exc, replica.name, self.timeout).message
        if self.default_model and all(m["id"] != self.default_model for m in listed):
            listed.insert(0, _model_object(self.default_model, self.endpoint_id))
        if not listed and failure is not None:
            raise UpstreamUnavailable(f"endpoint {self.endpoint_id!r} cannot list its models: {failure}")
        return listed


def _model_object(model_id: str, owner: str, created: int = 0) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


def _model_objects(body: bytes, owner: str) -> list[dict[str, Any]]:
    """Normalise an upstream's ``/models`` answer to OpenAI model objects (id, object, created, owned_by)."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return []
    items = doc.get("data") if isinstance(doc, dict) else None
    out: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            created = item.get("created")
            owned_by = item.get("owned_by")
            obj = _model_object(item["id"], owned_by if isinstance(owned_by, str) else owner,
                                created if isinstance(created, int) else 0)
            out.append(obj)
    return out
