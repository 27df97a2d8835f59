"""Quotas: which limits a request is charged to, the 429, the settlement, the quota route.

Before any engine work, ``Quotas.admit`` charges the request to every limit that applies
(``config.LimitsSettings``): its project's (``[limits.projects.<p>]``, else
``[limits.default]``), its named key's (``[limits.keys.<name>]``) and its endpoint's
(``[limits.endpoints.<id>]``). Tokens are charged as estimated at admission (the body's bytes
/ 4 for the prompt, plus ``max_tokens`` or ``limits.default_output_tokens`` per choice) and
settled to the real usage when the answer ends (``Lease.end``), streams included.

The counters live in a ``chatgate.limits.Limiter``: this process's memory, or Redis when
``[state] redis_url`` is set. When Redis cannot be reached, ``[state] on_error`` decides:
``open`` admits (with a warning, and a metric), ``closed`` answers 503. Revoked token ids
are polled from the same store every ``REVOCATION_POLL`` seconds into the authenticator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatgate.config import ConfigError, Limit, Settings
from chatgate.errors import RateLimited, UpstreamUnavailable
from chatgate.front.auth import Authenticator
from chatgate.front.metrics import Metrics
from chatgate.limits import Bucket, Limiter, MemoryLimiter, StoreUnavailable
from chatgate.protocols import gemini as g

if TYPE_CHECKING:
    from chatgate.front.state import AppState

log = logging.getLogger("chatgate.quota")

REVOCATION_POLL = 0.5  # seconds: a revocation reaches every replica within about this
REVOCATIONS_FILE = "revoked-tokens"
Scope = Literal["project", "key", "endpoint"]
# A limit's config name, and the short name of its counter.
_RATES = (("requests_per_minute", "rpm"), ("tokens_per_minute", "tpm"))


def open_limiter(settings: Settings, state_dir: Path | None) -> Limiter:
    """The store ``[state]`` names: Redis, else memory (revocations in ``state_dir``'s file)."""
    if settings.state.redis_url:
        try:
            from chatgate.limits.redis import RedisLimiter  # the `redis` extra, only when configured
        except ImportError:
            raise ConfigError("state.redis_url: needs the Redis client: pip install 'chatgate[redis]'") from None
        return RedisLimiter(
            settings.state.redis_url,
            prefix=settings.state.key_prefix,
            timeout=settings.state.timeout,
            lease_seconds=settings.limits.lease_seconds,
        )
    return MemoryLimiter(
        lease_seconds=settings.limits.lease_seconds,
        revocations=None if state_dir is None else state_dir / REVOCATIONS_FILE,
    )


@dataclass(frozen=True, slots=True)
class _Rule:
    """A configured limit: who it is for, and the buckets it makes."""

    scope: Scope
    name: str
    section: str  # where it is configured, for messages
    limit: Limit


@dataclass(frozen=True, slots=True)
class Charged:
    """A bucket, the rule it came from and the name of its limit."""

    bucket: Bucket
    rule: _Rule
    limit: str  # requests_per_minute, tokens_per_minute or concurrent


class Quotas:
    def __init__(self, settings: Settings, limiter: Limiter, metrics: Metrics, auth: Authenticator) -> None:
        self._limits = settings.limits
        self._on_error = settings.state.on_error
        self._shared = settings.state.redis_url is not None
        self.limiter = limiter
        self._metrics = metrics
        self._auth = auth
        limits = settings.limits
        # Nothing configured: admission costs nothing (no store round trip at all).
        self.enabled = any(
            _any(limit)
            for limit in (limits.default, *limits.projects.values(), *limits.keys.values(), *limits.endpoints.values())
        )
        self._counters: dict[tuple[str, str, bool], Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._store_down = False

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self._refresh_revocations()
        self._poller = asyncio.create_task(self._poll_revocations())

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.limiter.aclose()

    async def _poll_revocations(self) -> None:
        while True:
            await asyncio.sleep(REVOCATION_POLL)
            await self._refresh_revocations()

    async def _refresh_revocations(self) -> None:
        try:
            self._auth.revoked = await self.limiter.revoked()
        except StoreUnavailable as exc:
            self.store_failed(exc)  # keep the last list known

    # --- rules ------------------------------------------------------------------------------

    def _rules(self, project: str, key: str | None, endpoint: str | None) -> list[_Rule]:
        rules = []
        limit = self._limits.projects.get(project)
        if limit is not None:
            rules.append(_Rule("project", project, f"[limits.projects.{project}]", limit))
        elif _any(self._limits.default):
            rules.append(_Rule("project", project, "[limits.default]", self._limits.default))
        if key is not None and (limit := self._limits.keys.get(key)) is not None:
            rules.append(_Rule("key", key, f"[limits.keys.{key}]", limit))
        if endpoint is not None and (limit := self._limits.endpoints.get(endpoint)) is not None:
            rules.append(_Rule("endpoint", endpoint, f"[limits.endpoints.{endpoint}]", limit))
        return rules

    @staticmethod
    def _charges(rules: list[_Rule], tokens: int) -> list[Charged]:
        out = []
        for rule in rules:
            base = f"{rule.scope}:{rule.name}"
            for name, short in _RATES:
                value = getattr(rule.limit, name)
                if value is not None:
                    cost = 1 if short == "rpm" else tokens
                    out.append(Charged(Bucket(f"{base}:{short}", "rate", value, cost), rule, name))
            if rule.limit.concurrent is not None:
                out.append(
                    Charged(Bucket(f"{base}:concurrent", "concurrent", rule.limit.concurrent), rule, "concurrent")
                )
        return out

    # --- admission --------------------------------------------------------------------------

    async def admit(self, project: str, key: str | None, endpoint: str | None, tokens: int) -> Lease:
        """Charge the request or raise ``RateLimited`` (429) naming the limit; the lease it
        returns must be ended (``Lease.end``) when the answer is over."""
        if not self.enabled:
            return NO_LEASE
        charged = self._charges(self._rules(project, key, endpoint), tokens)
        if not charged:
            return NO_LEASE
        if self._tasks:
            await asyncio.sleep(0)  # let settlements already due start first (in memory: finish)
        lease_id = secrets.token_hex(8)
        try:
            decision = await self.limiter.acquire([c.bucket for c in charged], lease_id)
        except StoreUnavailable as exc:
            self.store_failed(exc)
            if self._on_error == "closed":
                raise UpstreamUnavailable(
                    "the quota store is unreachable; try again shortly",
                    code="quota_store_unavailable",
                    headers={"Retry-After": "1"},
                ) from None
            return NO_LEASE
        self._store_recovered()
        if not decision.allowed:
            refused = next(c for c in charged if c.bucket is decision.refused)
            self._count(refused, allowed=False)
            raise RateLimited(
                _refusal(refused, project, decision.retry_after), retry_after=math.ceil(decision.retry_after)
            )
        for c in charged:
            self._count(c, allowed=True)
        return Lease(self, [c.bucket for c in charged], lease_id, tokens)

    def _count(self, charged: Charged, *, allowed: bool) -> None:
        label = (charged.rule.scope, charged.limit, allowed)
        counter = self._counters.get(label)
        if counter is None:
            family = self._metrics.quota_allowed if allowed else self._metrics.quota_refused
            counter = self._counters[label] = family.labels(charged.rule.scope, charged.limit)
        counter.inc()

    def store_failed(self, exc: Exception) -> None:
        self._metrics.quota_store_errors.inc()
        if not self._store_down:
            self._store_down = True
            policy = (
                "admitting requests without shared limits" if self._on_error == "open" else "refusing requests (503)"
            )
            log.warning(
                "quota store unreachable (%s): %s until it is back (state.on_error = %r)", exc, policy, self._on_error
            )

    def _store_recovered(self) -> None:
        if self._store_down:
            self._store_down = False
            log.warning("quota store reachable again: limits enforced")

    def spawn(self, work: Callable[[], Any]) -> None:
        """Run a settlement in the background: the answer does not wait for the store."""
        task = asyncio.get_running_loop().create_task(self._quietly(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quietly(self, work: Callable[[], Any]) -> None:
        try:
            await work()
        except StoreUnavailable as exc:
            self.store_failed(exc)  # a slot left held expires with its lease

    # --- the caller's own quota -------------------------------------------------------------

    async def report(self, project: str, key: str | None) -> dict[str, object]:
        charged = self._charges(self._rules(project, key, None), 0)
        if self._tasks:
            await asyncio.sleep(0)
        levels = await self.limiter.levels([c.bucket for c in charged]) if charged else []
        return {
            "project": project,
            "shared": self._shared,
            "limits": [
                {
                    "scope": c.rule.scope,
                    "name": c.rule.name,
                    "limit": c.limit,
                    "value": c.bucket.limit,
                    "remaining": level.remaining,
                    "reset_seconds": round(level.reset, 3),
                }
                for c, level in zip(charged, levels, strict=True)
            ],
        }


class Lease:
    """A request's charge, to settle (tokens) and release (concurrency) once, when it ends."""

    def __init__(self, quotas: Quotas | None, buckets: list[Bucket], lease_id: str, estimate: int) -> None:
        self._quotas = quotas
        self._buckets = buckets
        self._id = lease_id
        self._estimate = estimate
        self._ended = quotas is None

    def end(self, used: int | None) -> None:
        """The request is over, having used ``used`` tokens (``None``: unknown, the estimate
        stands). Idempotent; the store is updated in the background."""
        if self._ended:
            return
        self._ended = True
        quotas = self._quotas
        assert quotas is not None
        tokens = [b for b in self._buckets if b.kind == "rate" and b.key.endswith(":tpm")]
        slots = [b for b in self._buckets if b.kind == "concurrent"]
        delta = 0 if used is None or not tokens else used - self._estimate
        if delta or slots:
            quotas.spawn(lambda: quotas.limiter.finish(tokens if delta else [], delta, slots, self._id))

    def recording(
        self, record: Callable[[str, g.UsageMetadata | None], None]
    ) -> Callable[[str, g.UsageMetadata | None], None]:
        """``record`` (the pipeline's usage hook), ending this lease with the usage it gets."""
        if self._ended:
            return record

        def both(label: str, usage: g.UsageMetadata | None) -> None:
            record(label, usage)
            self.end(
                None
                if usage is None
                else (usage.prompt_token_count or 0)
                + (usage.candidates_token_count or 0)
                + (usage.thoughts_token_count or 0)
            )

        return both


NO_LEASE = Lease(None, [], "", 0)


def estimate_tokens(body_bytes: int, max_tokens: object, n: object, default_output: int) -> int:
    """Tokens a request may use: its prompt (about a token per 4 bytes of body) and its answer."""
    output = (
        max_tokens
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0
        else default_output
    )
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    return body_bytes // 4 + output * choices


def _any(limit: Limit) -> bool:
    return any(v is not None for v in (limit.requests_per_minute, limit.tokens_per_minute, limit.concurrent))


def _refusal(charged: Charged, project: str, wait: float) -> str:
    rule = charged.rule
    who = {"project": f"project {rule.name!r}", "key": f"key {rule.name!r}", "endpoint": f"endpoint {rule.name!r}"}[
        rule.scope
    ]
    if rule.section == "[limits.default]":
        who += " (the default limit)"
    what = f"{charged.bucket.limit} {charged.limit.replace('_', ' ')}"
    if charged.limit == "concurrent":
        what = f"{charged.bucket.limit} concurrent requests"
    return (
        f"quota exceeded: {who} is limited to {what} ({rule.section} {charged.limit}); "
        f"retry in {max(1, math.ceil(wait))} s"
    )


async def quota_route(request: Request) -> Response:
    """``GET /v1/projects/{project}/quota``: what the caller has left, charging nothing."""
    state: AppState = request.app.state.chatgate
    project = request.path_params.get("project", state.settings.server.default_project)
    key = state.auth.check(request.headers, project)
    try:
        report = await state.quotas.report(project, key)
    except StoreUnavailable as exc:
        state.quotas.store_failed(exc)
        raise UpstreamUnavailable(
            "the quota store is unreachable; try again shortly",
            code="quota_store_unavailable",
            headers={"Retry-After": "1"},
        ) from None
    return JSONResponse(report)
