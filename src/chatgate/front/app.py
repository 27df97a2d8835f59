"""``build_app(settings)``: the ASGI application, its routes and its life cycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatgate import tokens
from chatgate.config import Settings, state_dir
from chatgate.engines.base import Load, ModelServer
from chatgate.engines.gemini import GeminiEngine
from chatgate.engines.gemini import is_configured as gemini_configured
from chatgate.engines.local.engine import LocalEngine
from chatgate.engines.upstream import UpstreamEndpoint
from chatgate.errors import ChatgateError, NotFound
from chatgate.front import caches, endpoints, native, projects, render, static
from chatgate.front.auth import Authenticator
from chatgate.front.cachestore import CacheStore
from chatgate.front.chat import chat_completions
from chatgate.front.deadline import Deadlines
from chatgate.front.hosts import HostCheckMiddleware, allowed_hosts
from chatgate.front.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from chatgate.front.quota import Quotas, open_limiter, quota_route
from chatgate.front.state import AppState
from chatgate.front.targets import OPENAPI, Targets
from chatgate.protocols.openai import encoder

log = logging.getLogger("chatgate")

VERSIONS = ("v1", "v1beta1")
PREFIX = "/{version}/projects/{project}/locations/{location}/endpoints/{endpoint}"


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.chatgate
    version = request.path_params.get("version")
    if version is not None and version not in VERSIONS:
        raise NotFound(f"no route for {request.method} {request.url.path}", code="unknown_url")
    return state


async def chat(request: Request) -> Response:
    _state(request)
    return await chat_completions(request)


async def models(request: Request) -> Response:
    state = _state(request)
    if "endpoint" not in request.path_params and native.from_google_client(request):
        return await native.api_models(request)
    project = request.path_params.get("project", state.settings.server.default_project)
    state.auth.check(request.headers, project)
    endpoint_id = request.path_params.get("endpoint", OPENAPI)
    if (endpoint := state.settings.endpoints.get(endpoint_id)) is not None:
        projects.check(endpoint.projects, project, f"endpoint {endpoint_id!r}")
    if endpoint_id == OPENAPI:
        listing = await state.targets.listing()
    elif (upstream := state.upstream(endpoint_id)) is not None:
        listing = await upstream.models()
    else:
        listing = state.targets.endpoint_listing(endpoint_id)
    return Response(encoder.encode(listing), media_type="application/json")


async def quota(request: Request) -> Response:
    _state(request)
    return await quota_route(request)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    state: AppState = request.app.state.chatgate
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.chatgate
    if not state.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready", "models": state.targets.served()})


def build_app(settings: Settings, *, local: ModelServer | None = None) -> Starlette:
    """The application for ``settings``. Models load at start-up (the lifespan), not here.

    ``local`` replaces the local engine built from ``settings`` (a test's or a benchmark's)."""
    secret = tokens.load_secret(state_dir(settings)) if settings.auth.enabled else None
    local = LocalEngine.from_settings(settings) if local is None else local
    gemini = GeminiEngine(settings.gemini) if gemini_configured(settings.gemini) else None
    auth, counters = Authenticator(settings.auth, secret), Metrics()
    limiter = open_limiter(settings, state_dir(settings) if settings.auth.enabled else None)
    state = AppState(
        settings=settings,
        auth=auth,
        targets=Targets(settings, local, gemini),
        quotas=Quotas(settings, limiter, counters, auth),
        metrics=counters,
        deadlines=Deadlines(settings.server.request_timeout),
        caches=CacheStore(
            local.unpin if isinstance(local, caches.Pins) else _keep, max_caches=settings.local.max_caches
        ),
    )
    for name in local.names():
        _watch(state.metrics, name, local.model(name))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await local.start()
        upstreams = _upstreams(settings)
        for upstream in upstreams.values():
            await upstream.start()
        state.upstreams = upstreams
        await state.quotas.start()
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            state.caches.clear()
            await state.quotas.aclose()
            for upstream in upstreams.values():
                await upstream.aclose()
            await local.aclose()
            if gemini is not None:
                await gemini.aclose()

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route(PREFIX + "/chat/completions", chat, methods=["POST"]),
        Route(PREFIX + "/models", models, methods=["GET"]),
        *(
            Route(f"/{version}/projects/{{project}}/locations/{{location}}/endpoints", endpoints.list_endpoints)
            for version in VERSIONS
        ),
        Route("/{version}/projects/{project}/quota", quota, methods=["GET"]),
        *native.routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *caches.routes(),
        *static.routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(HostCheckMiddleware, allowed=allowed_hosts(settings.server, settings.auth.enabled)),
            Middleware(MetricsMiddleware, metrics=state.metrics),
        ],
        exception_handlers={
            ChatgateError: render.on_chatgate_error,
            HTTPException: render.on_http_exception,
            Exception: render.on_unexpected,
        },
    )
    app.state.chatgate = state
    return app


def _keep(pinned: object) -> None:
    pass


def _watch(metrics: Metrics, name: str, load: Load) -> None:
    metrics.watch_local_model(name, lambda: load.waiting, lambda: load.busy)


def _upstreams(settings: Settings) -> dict[str, UpstreamEndpoint]:
    """One relay per endpoint with upstream URLs (``engines/upstream/``)."""
    configured = {eid: ep for eid, ep in settings.endpoints.items() if ep.upstreams}
    return {eid: UpstreamEndpoint(eid, ep) for eid, ep in configured.items()}
