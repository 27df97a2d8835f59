"""One self-deployed endpoint: admission, balancing across replicas, and retry.

- Admission: at most ``max_concurrency`` requests in flight and ``queue_size`` waiting;
  beyond that ``RateLimited`` (429, ``Retry-After``).
- Balancing: least outstanding requests among healthy replicas, ties round robin; every
  replica when none is healthy (``replicas.py``).
- Retry, at most once per request, only when the upstream cannot have answered:
  - a connection that could not be opened counts as a failure of that replica (passive
    health detection) and the request goes to another replica;
  - a connection closed before the status line (most often a pooled connection the upstream
    closed for idleness) is retried on a fresh connection, on another replica if there is a
    healthy one, else the same one; only a failure on the fresh connection counts.
  A timeout is not retried: the upstream may be generating, and the client asked for at
  most ``timeout``.
- Errors: only ``chatgate.errors`` types leave this package. Upstream credentials never
  appear in a message or a log line: replicas are named ``endpoint 'id' upstream #n`` to
  clients, and by their URL without user info or query in logs.
"""

from __future__ import annotations

import asyncio
import logging

from chatgate.config import EndpointSettings
from chatgate.engines.admission import Admission
from chatgate.engines.http_errors import (
    CLIENT_ERRORS,
    Outcome,
    describe,
    outcome,
    transport_error,
)
from chatgate.engines.httpclient import HttpClient, HttpResponse
from chatgate.engines.upstream import listing
from chatgate.engines.upstream.errors import upstream_error
from chatgate.engines.upstream.probe import Prober
from chatgate.engines.upstream.replicas import Balancer, Replica
from chatgate.engines.upstream.stream import UpstreamResponse
from chatgate.errors import ChatgateError, UpstreamError, UpstreamUnavailable
from chatgate.protocols import openai as o

log = logging.getLogger("chatgate.upstream")

_MAX_ERROR_BODY = 64 * 1024  # bytes of an upstream error body worth reading


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
        self.replicas = [Replica(endpoint_id, i, url, settings.health_path) for i, url in enumerate(settings.upstreams)]
        self.admission = Admission(f"endpoint {endpoint_id!r}", settings.max_concurrency, settings.queue_size)
        self._balancer = Balancer(self.replicas)
        headers = {
            "Accept": "application/json, text/event-stream",
            # Relay bytes as they come: no decompression on the way.
            "Accept-Encoding": "identity",
            "User-Agent": "chatgate",
        }
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        # Case-insensitive, so the configured headers replace ours rather than doubling them.
        for name, value in settings.headers.items():
            for ours in [k for k in headers if k.lower() == name.lower()]:
                del headers[ours]
            headers[name] = value
        self._headers = headers
        self._post_headers = dict(headers)
        if not any(k.lower() == "content-type" for k in headers):
            self._post_headers["Content-Type"] = "application/json"
        connect = min(settings.connect_timeout, settings.timeout)
        self._client = HttpClient(connect_timeout=connect, read_timeout=settings.timeout)
        self._fresh = HttpClient(connect_timeout=connect, read_timeout=settings.timeout, keepalive=False)
        self._prober = Prober(
            self.replicas,
            self._client,
            self._fresh,
            self._headers,
            settings.health_interval,
            settings.unhealthy_threshold,
        )
        self._probing: asyncio.Task[None] | None = None

    # lifecycle

    async def start(self) -> None:
        if self._probing is None:
            self._probing = asyncio.create_task(self._prober.run_forever(), name=f"probe {self.endpoint_id}")

    async def aclose(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            try:
                await self._probing
            except asyncio.CancelledError:
                pass
            self._probing = None
        await self._client.aclose()
        await self._fresh.aclose()

    async def probe(self, replica: Replica) -> bool:
        """Check one replica now (as the periodic probe does); whether it is alive."""
        return await self._prober.probe(replica)

    # relaying

    async def open(self, body: bytes) -> UpstreamResponse:
        """Send a chat request body; the upstream's 2xx answer, or a raised ``ChatgateError``."""
        admitted = await self.admission.acquire()
        try:
            replica, response = await self._send(body)
        except BaseException:
            self.admission.release(admitted)
            raise

        def finished() -> None:
            replica.outstanding -= 1
            self.admission.release(admitted)

        try:
            await self._check(replica, response)
        except BaseException:
            response.close()
            finished()
            raise
        return UpstreamResponse(self.endpoint_id, replica, response, self.timeout, finished)

    async def _send(self, body: bytes) -> tuple[Replica, HttpResponse]:
        replica = self._balancer.pick()
        assert replica is not None  # an endpoint has replicas, and pick falls back to all
        replica.outstanding += 1
        try:
            response = await self._client.send("POST", replica.chat_url, self._post_headers, body)
        except CLIENT_ERRORS as exc:
            replica.outstanding -= 1
            kind = outcome(exc)
            failure = transport_error(exc, replica.name, self.timeout)
            if kind is Outcome.UNREACHABLE:
                replica.failed(f"could not be reached ({describe(exc)})", self.settings.unhealthy_threshold)
                retry, client = self._balancer.pick(exclude=(replica,)), self._client
            elif kind is Outcome.CLOSED:  # perhaps a stale pooled connection: a fresh one
                retry, client = self._balancer.pick(exclude=(replica,)) or replica, self._fresh
            else:
                raise failure from exc
            if retry is None:
                raise self._down(failure, tried=(replica,)) from exc
            return retry, await self._retry(retry, client, body, tried=(replica,))
        except BaseException:
            replica.outstanding -= 1
            raise
        if replica.failures:
            replica.succeeded()
        return replica, response

    async def _retry(
        self, replica: Replica, client: HttpClient, body: bytes, tried: tuple[Replica, ...]
    ) -> HttpResponse:
        """The one retry; every failure of it counts against its replica."""
        replica.outstanding += 1
        try:
            response = await client.send("POST", replica.chat_url, self._post_headers, body)
        except CLIENT_ERRORS as exc:
            replica.outstanding -= 1
            failure = transport_error(exc, replica.name, self.timeout)
            kind = outcome(exc)
            if kind is Outcome.UNREACHABLE:
                replica.failed(f"could not be reached ({describe(exc)})", self.settings.unhealthy_threshold)
                raise self._down(failure, tried=(*tried, replica)) from exc
            if kind is Outcome.CLOSED:
                replica.failed(
                    f"closed the connection without answering ({describe(exc)})", self.settings.unhealthy_threshold
                )
            raise failure from exc
        except BaseException:
            replica.outstanding -= 1
            raise
        if replica.failures:
            replica.succeeded()
        return response

    def _down(self, failure: ChatgateError, tried: tuple[Replica, ...]) -> ChatgateError:
        """The error when the replicas tried could not be reached: a 503 that names each
        replica's last failure when none is left to try."""
        if any(r not in tried and r.healthy for r in self.replicas):
            return failure
        n = len(self.replicas)
        what = "its upstream is" if n == 1 else f"all {n} upstreams are"
        reasons = "; ".join(f"upstream #{r.number}: {r.last_error}" for r in self.replicas if r.last_error)
        message = f"endpoint {self.endpoint_id!r} is unavailable: {what} down"
        message += f" ({reasons or failure.message})"
        message += f"; health checks run every {self.settings.health_interval:g} s"
        retry = max(1, round(self.settings.health_interval))
        return UpstreamUnavailable(message, headers={"Retry-After": str(retry)})

    async def _check(self, replica: Replica, response: HttpResponse) -> None:
        """Raise for an answer that is not a relayable 2xx chat completion."""
        status = response.status
        content_type = response.headers.get("content-type", "")
        if 200 <= status < 300 and (
            not content_type or "json" in content_type or content_type.startswith("text/event-stream")
        ):
            return
        try:
            body = await response.read_at_most(_MAX_ERROR_BODY)
        except CLIENT_ERRORS:
            body = b""  # the status is enough to describe the failure
        if 200 <= status < 300:
            kind = content_type.split(";")[0]
            raise UpstreamError(f"{replica.name} answered with {kind}, not JSON: is it an OpenAI-compatible server?")
        log.info("endpoint=%s upstream=%s answered HTTP %d", self.endpoint_id, replica.label, status)
        raise upstream_error(
            replica.name, status, response.reason, content_type, body, response.headers.get("retry-after")
        )

    # listing

    async def models(self) -> o.ModelList:
        """What the endpoint serves: the upstream's own listing, with the configured default
        model first; the default alone when no upstream answers. With neither,
        ``UpstreamUnavailable``."""
        listed: list[o.Model] = []
        failure: str | None = None
        for replica in sorted(self.replicas, key=lambda r: not r.healthy):
            try:
                status, body = await self._client.get(replica.models_url, self._headers)
            except CLIENT_ERRORS as exc:
                failure = transport_error(exc, replica.name, self.timeout).message
                continue
            if status == 200:
                listed = listing.model_objects(body, self.endpoint_id)
                break
            failure = f"{replica.name} answered HTTP {status} to a model listing"
        listed = listing.with_default(listed, self.default_model, self.endpoint_id)
        if not listed and failure is not None:
            raise UpstreamUnavailable(f"endpoint {self.endpoint_id!r} cannot list its models: {failure}")
        return o.ModelList(data=listed)
