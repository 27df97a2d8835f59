"""Replicas and their health: when one is taken out of rotation and when it comes back.

The rules follow Envoy's: a replica is ejected after ``unhealthy_threshold`` consecutive
failures, from probes (``probe.py``) or from requests that could not connect (passive
detection); one success (a probe, or a relayed answer) brings it back and resets the count.
When every replica is ejected, ``pick`` chooses among all of them anyway (panic mode): a
replica wrongly marked down then still serves, and one truly down fails as it would have.
"""

from __future__ import annotations

import itertools
import logging

from chatgate.engines.upstream.urls import api_urls, redact

log = logging.getLogger("chatgate.upstream")


class Replica:
    """One upstream server; ``outstanding`` counts requests sent and not yet finished."""

    def __init__(self, endpoint_id: str, index: int, url: str, health_path: str) -> None:
        self.endpoint_id = endpoint_id
        self.base, root, query = api_urls(url)
        query = "?" + query if query else ""
        self.chat_url = self.base + "/chat/completions" + query
        self.models_url = self.base + "/models" + query
        self.health_url = root + "/" + health_path.lstrip("/")
        self.number = index + 1
        self.name = f"endpoint {endpoint_id!r} upstream #{self.number}"  # shown to clients
        self.label = redact(self.base)  # shown in logs
        self.outstanding = 0
        self.healthy = True
        self.failures = 0  # consecutive
        self.last_error: str | None = None

    def failed(self, reason: str, threshold: int) -> None:
        """Count a failure; the ``threshold``-th in a row ejects the replica."""
        self.failures += 1
        self.last_error = reason
        if self.healthy and self.failures >= threshold:
            self.healthy = False
            log.warning(
                "endpoint=%s upstream=%s ejected after %d failures: %s",
                self.endpoint_id,
                self.label,
                self.failures,
                reason,
            )

    def succeeded(self) -> None:
        self.failures = 0
        if not self.healthy:
            self.healthy = True
            self.last_error = None
            log.warning("endpoint=%s upstream=%s readmitted", self.endpoint_id, self.label)


class Balancer:
    """Least outstanding requests among the healthy replicas, ties round robin; all of
    them when none is healthy (panic mode)."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self._turn = itertools.count()

    def pick(self, exclude: tuple[Replica, ...] = ()) -> Replica | None:
        replicas = self.replicas
        n = len(replicas)
        start = next(self._turn) % n
        panic = not any(r.healthy for r in replicas)
        best: Replica | None = None
        for i in range(n):
            replica = replicas[(start + i) % n]
            if (not replica.healthy and not panic) or replica in exclude:
                continue
            if best is None or replica.outstanding < best.outstanding:
                best = replica
        return best
