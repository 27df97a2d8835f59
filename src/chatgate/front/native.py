"""Gemini's own API beside the OpenAI one: ``generateContent``, ``streamGenerateContent``,
``countTokens`` and the model listings, on every engine, errors in Google's shape.

Two URL forms, as Google's SDKs send them:

- Vertex AI: ``/{v1,v1beta1}/projects/{p}/locations/{l}/publishers/{publisher}/models/{model}:{method}``
  (and without ``projects/{p}/locations/{l}``, express mode's form, under the default project);
  ``publishers/{org}/models/{id}`` names the local model ``org/id``, and
  ``publishers/google/models/{name}`` a local model's bare name or alias, else Gemini's ``name``.
- The Gemini API: ``/{v1,v1beta}/models/{model}:{method}``, the key in ``x-goog-api-key`` or
  ``?key=``, under the default project; ``{model}`` is a local model's name (``org/id``
  included) or a Gemini model id.

The canonical request is Gemini's, so a request runs as it came (``pipeline.Run``) and the
engine's responses go back as they are, stamped with ``modelVersion``, ``responseId`` and
``createTime`` where the engine left them out. A stream is a JSON array by default, server-sent
events with ``?alt=sse``; an error after it started is its last element (or event), in
Google's error shape.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chatgate.errors import ChatgateError, NotFound
from chatgate.front import caches, pipeline, projects, sse
from chatgate.front.body import decode_gemini, read_body
from chatgate.front.chat import MODEL_HEADER
from chatgate.front.disconnect import CLIENT_CLOSED, ClientGone
from chatgate.front.native_checks import check_count, check_generate
from chatgate.front.quota import estimate_tokens
from chatgate.front.render import google_error_body, google_errors
from chatgate.front.state import AppState
from chatgate.front.targets import GOOGLE_PREFIX, OPENAPI, Target
from chatgate.protocols import gemini as g

log = logging.getLogger("chatgate.native")

VERTEX_VERSIONS = ("v1", "v1beta1")
API_VERSIONS = ("v1", "v1beta")
VERTEX = "/{version}/projects/{project}/locations/{location}/publishers/{publisher}/models"
EXPRESS = "/{version}/publishers/{publisher}/models"
METHODS = ("generateContent", "streamGenerateContent", "countTokens")
# What a served model answers, for the Gemini API's model resource.
GENERATION_METHODS = list(METHODS)


# --- routes ----------------------------------------------------------------------------------


@google_errors
async def vertex_call(request: Request) -> Response:
    state, project = _vertex(request)
    model, method = _split(request.path_params["call"])
    publisher = request.path_params["publisher"]
    return await _call(request, state, project, lambda: _vertex_target(state, publisher, model), method)


@google_errors
async def api_call(request: Request) -> Response:
    state = _api(request)
    model, method = _split(request.path_params["call"].removeprefix("models/"))
    project = state.settings.server.default_project
    return await _call(request, state, project, lambda: _api_target(state, model), method)


@google_errors
async def vertex_model(request: Request) -> Response:
    state, project = _vertex(request)
    state.auth.check(request.headers, project)
    publisher, model = request.path_params["publisher"], request.path_params["model"]
    target = _vertex_target(state, publisher, model)
    await _listed(state, target, f"{publisher}/{model}")
    return _json(g.PublisherModel(name=f"publishers/{publisher}/models/{model}", launch_stage="GA"))


@google_errors
async def vertex_models(request: Request) -> Response:
    state, project = _vertex(request)
    state.auth.check(request.headers, project)
    names = await state.targets.all_served()
    return _json(g.ListPublisherModelsResponse(publisher_models=[_publisher_model(name) for name in names]))


@google_errors
async def api_model(request: Request) -> Response:
    state = _api(request)
    state.auth.check(request.headers, state.settings.server.default_project, query_key=request.query_params.get("key"))
    model = request.path_params["model"].removeprefix("models/")
    await _listed(state, _api_target(state, model), model)
    return _json(_api_model(model))


@google_errors
async def api_models(request: Request) -> Response:
    state = _api(request)
    state.auth.check(request.headers, state.settings.server.default_project, query_key=request.query_params.get("key"))
    names = await state.targets.all_served()
    return _json(g.ListModelsResponse(models=[_api_model(name.removeprefix(GOOGLE_PREFIX)) for name in names]))


def routes() -> list[Route]:
    return [
        Route(VERTEX + "/{call}", vertex_call, methods=["POST"]),
        Route(VERTEX + "/{model}", vertex_model, methods=["GET"]),
        Route(VERTEX, vertex_models, methods=["GET"]),
        Route(EXPRESS + "/{call}", vertex_call, methods=["POST"]),
        Route(EXPRESS + "/{model}", vertex_model, methods=["GET"]),
        Route(EXPRESS, vertex_models, methods=["GET"]),
        Route("/{version}/models/{call:path}", api_call, methods=["POST"]),
        Route("/{version}/models/{model:path}", api_model, methods=["GET"]),
        # GET /v1/models is OpenAI's listing too: app.py asks ``from_google_client`` which.
        Route("/v1beta/models", api_models, methods=["GET"]),
    ]


def from_google_client(request: Request) -> bool:
    """Whether a ``GET /v1/models`` comes from a Google client (the google-genai SDK asks
    the Gemini API's v1 there, saying who it is in ``x-goog-api-client``), which wants the
    Gemini API's listing, not OpenAI's. An API key alone does not tell: OpenAI clients may
    send theirs as ``x-goog-api-key`` too."""
    return "x-goog-api-client" in request.headers or "key" in request.query_params


# --- the request -----------------------------------------------------------------------------


def _vertex(request: Request) -> tuple[AppState, str]:
    state: AppState = request.app.state.chatgate
    if request.path_params["version"] not in VERTEX_VERSIONS:
        raise NotFound(f"no route for {request.method} {request.url.path}")
    return state, request.path_params.get("project", state.settings.server.default_project)


def _api(request: Request) -> AppState:
    state: AppState = request.app.state.chatgate
    if request.path_params.get("version", "v1beta") not in API_VERSIONS:
        raise NotFound(f"no route for {request.method} {request.url.path}")
    return state


def _split(call: str) -> tuple[str, str]:
    model, colon, method = call.rpartition(":")
    if not colon or method not in METHODS:
        raise NotFound(
            f"no method {method or call!r} on models: this server answers {', '.join(METHODS)}",
        )
    return model, method


async def _call(
    request: Request, state: AppState, project: str, resolve: Callable[[], Target], method: str
) -> Response:
    key = state.auth.check(request.headers, project, query_key=request.query_params.get("key"))
    raw = await read_body(request, state.settings.server.max_body_bytes, state.settings.server.body_timeout)
    target = resolve()
    if target.engine is state.targets.gemini:
        projects.check(state.settings.gemini.projects, project, "Gemini")
    if method == "countTokens":
        return await _count(state, project, key, target, raw)
    generate = decode_gemini(raw, g.GenerateContentRequest)
    check_generate(generate)
    generate = caches.expand(state, project, target, generate)  # `cachedContent`, applied
    stream = method == "streamGenerateContent"
    config = generate.generation_config or g.GenerationConfig()
    run = pipeline.Run(target.engine, target.model, target.label, generate, stream, deadline=state.deadlines.start())
    tokens = estimate_tokens(
        len(raw), config.max_output_tokens, config.candidate_count, state.settings.limits.default_output_tokens
    )
    lease = await state.quotas.admit(project, key, OPENAPI, tokens)
    record = lease.recording(state.metrics.record_usage)
    stamp = Stamp(target.model.removeprefix(GOOGLE_PREFIX), sse=request.query_params.get("alt") == "sse")
    answered = {MODEL_HEADER: target.label}
    streaming = False
    try:
        if stream:
            opened = await pipeline.Stream.open(run, record=record, receive=request.receive)
            body = opened.events(stamp, failed=stamp.failed, frame=stamp.frame)
            streaming = True  # the stream ends the lease when it closes
            if stamp.sse:
                return StreamingResponse(
                    sse.coalesced(body), media_type=sse.MEDIA_TYPE, headers={**sse.HEADERS, **answered}
                )
            return StreamingResponse(sse.coalesced(body), media_type="application/json", headers=answered)
        response = await pipeline.complete(run, record=record, receive=request.receive)
    except ClientGone:
        log.info("client went away; generation stopped")
        return Response(status_code=CLIENT_CLOSED)
    finally:
        if not streaming:
            lease.end(None)  # a no-op when the usage has settled it
    return Response(g.encoder.encode(stamp.stamped(response)), media_type="application/json", headers=answered)


async def _count(state: AppState, project: str, key: str | None, target: Target, raw: bytes) -> Response:
    counted = check_count(decode_gemini(raw, g.CountTokensRequest))
    lease = await state.quotas.admit(project, key, OPENAPI, 0)  # a request, no generated tokens
    try:
        gemini = state.targets.gemini
        if gemini is not None and target.engine is gemini:
            work = gemini.count_tokens(target.model, counted)
            response = await pipeline.within(state.deadlines.start(), work)
        else:
            total = await pipeline.within(
                state.deadlines.start(), state.targets.local.count_tokens(target.model, counted)
            )
            response = g.CountTokensResponse(total_tokens=total)
    finally:
        lease.end(0)
    return _json(response)


# --- names -----------------------------------------------------------------------------------


def _vertex_target(state: AppState, publisher: str, model: str) -> Target:
    """``publishers/{publisher}/models/{model}``: the local ``publisher/model``, a local bare
    name under ``google``, else Gemini's ``google/model`` (404 for any other publisher)."""
    name = f"{publisher}/{model}"
    local = state.targets.local
    if publisher == "google" and local.resolve(name) is None and local.resolve(model) is not None:
        name = model
    return state.targets.model(name)


def _api_target(state: AppState, model: str) -> Target:
    """``models/{model}``: a local model's name or alias (``org/id`` too), else Gemini's."""
    if state.targets.local.resolve(model) is None and "/" not in model:
        model = GOOGLE_PREFIX + model
    return state.targets.model(model)


async def _listed(state: AppState, target: Target, asked: str) -> None:
    """404 for a Gemini model Google does not list (when its listing is known)."""
    gemini = state.targets.gemini
    if gemini is None or target.engine is not gemini:
        return
    known = await gemini.models()
    if known and target.model not in known:
        raise NotFound(f"model {asked!r} is not served here; Gemini's are: {', '.join(known)}")


def _publisher_model(name: str) -> g.PublisherModel:
    publisher, slash, model = name.partition("/")
    path = f"publishers/{publisher}/models/{model}" if slash else f"publishers/google/models/{name}"
    return g.PublisherModel(name=path, launch_stage="GA")


def _api_model(name: str) -> g.Model:
    return g.Model(
        name=f"models/{name}",
        base_model_id=name,
        version="001",
        display_name=name,
        supported_generation_methods=GENERATION_METHODS,
    )


def _json(value: object) -> Response:
    return Response(g.encoder.encode(value), media_type="application/json")


# --- the answer ------------------------------------------------------------------------------


class Stamp:
    """The engine's responses as they are (``pipeline.Translator``), with what Google's carry
    and an engine may leave out, and their framing: a JSON array, or SSE with ``sse``."""

    def __init__(self, model: str, *, sse: bool) -> None:
        self.sse = sse
        self._model = model
        self._id = secrets.token_urlsafe(18)
        self._created = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        self._opened = False

    def stamped(self, response: g.GenerateContentResponse) -> g.GenerateContentResponse:
        if response.model_version is None:
            response.model_version = self._model
        if response.response_id is None:
            response.response_id = self._id
        if response.create_time is None:
            response.create_time = self._created
        if response.candidates == []:
            response.candidates = None  # a usage-only chunk: no candidates, as Google sends it
        return response

    def feed(self, response: g.GenerateContentResponse) -> list[object]:
        return [self.stamped(response)]

    def finish(self) -> list[object]:
        return [] if self.sse else [_END]

    def frame(self, event: object) -> bytes:
        if self.sse:
            return sse.encode_event(event)
        if event is _END:
            return b"]" if self._opened else b"[]"
        return self._element(g.encoder.encode(event))

    def failed(self, exc: Exception) -> bytes:
        """A stream's last element: the error that ended it, in Google's shape."""
        if not isinstance(exc, ChatgateError):
            log.exception("stream failed after it started")
            exc = ChatgateError("internal error", code="internal_error")
        else:
            log.warning("stream failed after it started: %s", exc.message)
        body = google_error_body(exc)
        if self.sse:
            return sse.encode_event(body)
        return self._element(g.encoder.encode(body)) + b"]"

    def _element(self, encoded: bytes) -> bytes:
        head = b",\r\n" if self._opened else b"["
        self._opened = True
        return head + encoded


_END = object()  # the close of a JSON-array stream
