"""Active health checks: a GET of each replica's health URL every ``health_interval`` seconds.

Any answer below 500 counts as alive. A probe that fails because the connection closed
before the answer (most often a pooled connection the upstream had just closed for
idleness, as uvicorn does after its 5 s keep-alive) is tried again at once on a fresh
connection, and only that second failure counts. Failures and successes go to the
replica's health rules (``replicas.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from chatgate.engines.http_errors import CLIENT_ERRORS, Outcome, describe, outcome
from chatgate.engines.httpclient import HttpClient
from chatgate.engines.upstream.replicas import Replica

log = logging.getLogger("chatgate.upstream")


class Prober:
    def __init__(
        self,
        replicas: list[Replica],
        pooled: HttpClient,
        fresh: HttpClient,
        headers: Mapping[str, str],
        interval: float,
        threshold: int,
    ) -> None:
        self._replicas = replicas
        self._pooled = pooled
        self._fresh = fresh
        self._headers = headers
        self._interval = interval
        self._threshold = threshold

    async def run_forever(self) -> None:
        while True:
            try:
                await asyncio.gather(*(self.probe(replica) for replica in self._replicas))
            except Exception:  # a bug here must not end probing for good
                log.exception("health check failed unexpectedly")
            await asyncio.sleep(self._interval)

    async def probe(self, replica: Replica) -> bool:
        """Check one replica now and record the result; whether it is alive."""
        reason = await self._check(replica, self._pooled)
        if reason == "closed":
            reason = await self._check(replica, self._fresh)
        if reason is None:
            replica.succeeded()
            return True
        replica.failed(reason, self._threshold)
        return False

    async def _check(self, replica: Replica, client: HttpClient) -> str | None:
        """None when alive; ``"closed"`` when the connection closed without an answer;
        else why the probe failed."""
        try:
            status, _ = await client.get(replica.health_url, self._headers)
        except CLIENT_ERRORS as exc:
            if client is self._pooled and outcome(exc) is Outcome.CLOSED:
                return "closed"
            return f"health check failed ({describe(exc)})"
        if status >= 500:
            return f"health check answered HTTP {status}"
        return None
