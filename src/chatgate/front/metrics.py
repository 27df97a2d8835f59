"""Prometheus metrics, served at ``GET /metrics``.

One registry per application (several can live in one process, as in tests). Requests are
counted by route kind and status by a thin ASGI middleware; tokens by model from the usage
each engine reports; queue depth and busy state are read from the local engine when
scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from chatgate.protocols import gemini as g

CONTENT_TYPE = CONTENT_TYPE_LATEST


# Gemini's own methods (``.../models/{model}:generateContent``), by the name metrics give them.
_METHODS = {
    "generateContent": "generate_content",
    "streamGenerateContent": "stream_generate_content",
    "countTokens": "count_tokens",
}


def route_kind(path: str) -> str:
    if path.endswith("/chat/completions"):
        return "chat_completions"
    _, colon, method = path.rpartition(":")
    if colon and method in _METHODS:
        return _METHODS[method]
    if "/cachedContents" in path:
        return "cached_contents"
    if path.endswith("/models"):
        return "models"
    if path in ("/healthz", "/readyz", "/metrics"):
        return path.strip("/")
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "chatgate_requests",
            "HTTP requests answered, by route kind and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "chatgate_request_duration_seconds",
            "Time to the end of the response (a stream's end for streams)",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.prompt_tokens = Counter(
            "chatgate_prompt_tokens", "Prompt tokens, by model", ["model"], registry=self.registry
        )
        self.completion_tokens = Counter(
            "chatgate_completion_tokens", "Generated tokens, by model", ["model"], registry=self.registry
        )
        self._queue = Gauge(
            "chatgate_local_queue_waiting", "Requests waiting for a local model", ["model"], registry=self.registry
        )
        # Labelled children, looked up once: prometheus_client's labels() is costly per request.
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}
        self._tokens: dict[str, tuple[Any, Any]] = {}  # model -> (prompt, completion) children
        self.quota_allowed = Counter(
            "chatgate_quota_allowed",
            "Requests a quota limit admitted, by scope and limit",
            ["scope", "limit"],
            registry=self.registry,
        )
        self.quota_refused = Counter(
            "chatgate_quota_refused",
            "Requests a quota limit refused (429), by scope and limit",
            ["scope", "limit"],
            registry=self.registry,
        )
        self.quota_store_errors = Counter(
            "chatgate_quota_store_errors",
            "Quota checks the shared store (Redis) could not answer",
            registry=self.registry,
        )
        self._busy = Gauge(
            "chatgate_local_busy", "1 while a local model is generating", ["model"], registry=self.registry
        )

    def watch_local_model(self, name: str, waiting: Callable[[], int], busy: Callable[[], bool]) -> None:
        self._queue.labels(name).set_function(waiting)
        self._busy.labels(name).set_function(lambda: 1.0 if busy() else 0.0)

    def observe(self, route: str, status: int, seconds: float) -> None:
        counter = self._counted.get((route, status))
        if counter is None:
            counter = self._counted[(route, status)] = self.requests.labels(route, str(status))
        timer = self._timed.get(route)
        if timer is None:
            timer = self._timed[route] = self.duration.labels(route)
        counter.inc()
        timer.observe(seconds)

    def record_usage(self, model: str, usage: g.UsageMetadata | None) -> None:
        if usage is None:
            return
        self.record_tokens(
            model,
            usage.prompt_token_count or 0,
            (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
        )

    def record_tokens(self, model: str, prompt: int, completion: int) -> None:
        children = self._tokens.get(model)
        if children is None:  # labels are configured model names only: a bounded set
            children = self._tokens[model] = (self.prompt_tokens.labels(model), self.completion_tokens.labels(model))
        children[0].inc(prompt)
        children[1].inc(completion)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP response by route kind and status, and times it."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_count(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            self.metrics.observe(route_kind(scope["path"]), status, time.perf_counter() - started)
