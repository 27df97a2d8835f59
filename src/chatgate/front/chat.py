"""``POST .../chat/completions``: parse, route, run, and answer in JSON or SSE.

The handler is thin: the body is decoded (``body.py``), the target resolved
(``targets.py``), and the request run through the shared pipeline (``pipeline.py``:
translate, run the engine, translate back). A client that goes away cancels the work: while
waiting for an answer (or a stream's first chunk) a watcher listens for
``http.disconnect``; a stream is closed by the server when a write fails.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from chatgate.errors import ChatgateError
from chatgate.front import caches, pipeline, projects, sse
from chatgate.front.body import decode_chat_request, decode_object, read_body
from chatgate.front.disconnect import CLIENT_CLOSED, ClientGone
from chatgate.front.quota import estimate_tokens
from chatgate.front.relay import relay_chat
from chatgate.front.state import AppState
from chatgate.front.targets import OPENAPI
from chatgate.protocols.openai import encoder
from chatgate.translate.stream import StreamTranslator

log = logging.getLogger("chatgate.chat")

# The model that really answered: the body echoes the client's name for it, which with
# ``[gemini] local_fallback`` is a Gemini model's while a local model wrote the answer.
MODEL_HEADER = "x-chatgate-model"


async def chat_completions(request: Request) -> Response:
    state: AppState = request.app.state.chatgate
    project = request.path_params.get("project", state.settings.server.default_project)
    key = state.auth.check(request.headers, project)
    raw = await read_body(request, state.settings.server.max_body_bytes, state.settings.server.body_timeout)
    endpoint_id = request.path_params.get("endpoint", OPENAPI)

    endpoint = state.settings.endpoints.get(endpoint_id) if endpoint_id != OPENAPI else None
    if endpoint is not None:
        projects.check(endpoint.projects, project, f"endpoint {endpoint_id!r}")
    upstream = state.upstream(endpoint_id) if endpoint_id != OPENAPI else None
    if upstream is not None:
        fields = decode_object(raw)
        lease = await state.quotas.admit(project, key, endpoint_id, _estimate(state, len(raw), fields))
        return await relay_chat(upstream, request, raw, fields, state.deadlines.start(), lease=lease)

    chat = decode_chat_request(raw)
    name = chat.model if isinstance(chat.model, str) and chat.model else None
    if endpoint_id == OPENAPI:
        target = state.targets.model(name)
        if target.engine is state.targets.gemini:
            projects.check(state.settings.gemini.projects, project, "Gemini")
    else:
        target = state.targets.endpoint(endpoint_id, name)
    echo = name or target.model  # the answer carries the client's name for the model
    log.info("model %r answered by %s", echo, target.label)
    answered = {MODEL_HEADER: target.label}
    run, rendering = pipeline.openai_run(
        target.engine, target.model, target.label, chat, echo, deadline=state.deadlines.start()
    )
    run.request = caches.expand(state, project, target, run.request, caches.OPENAI_PARAMS)
    tokens = estimate_tokens(
        len(raw), chat.max_completion_tokens or chat.max_tokens, chat.n, state.settings.limits.default_output_tokens
    )
    lease = await state.quotas.admit(project, key, endpoint_id, tokens)
    record = lease.recording(state.metrics.record_usage)  # the usage settles the quota
    streaming = False
    try:
        if rendering.stream:
            stream = await pipeline.Stream.open(run, record=record, receive=request.receive)
            body = stream.events(StreamTranslator(rendering), failed=_failed, done=sse.DONE)
            streaming = True  # the stream ends the lease when it closes
            return StreamingResponse(
                sse.coalesced(body), media_type=sse.MEDIA_TYPE, headers={**sse.HEADERS, **answered}
            )
        completion = await pipeline.chat_completion(run, rendering, record=record, receive=request.receive)
    except ClientGone:
        log.info("client went away; generation stopped")
        return Response(status_code=CLIENT_CLOSED)
    finally:
        if not streaming:
            lease.end(None)  # a no-op when the usage has settled it
    return Response(encoder.encode(completion), media_type="application/json", headers=answered)


def _estimate(state: AppState, size: int, body: dict[str, object]) -> int:
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    return estimate_tokens(size, asked, body.get("n"), state.settings.limits.default_output_tokens)


def _failed(exc: Exception) -> bytes:
    """The last event of a stream that failed after it started."""
    if isinstance(exc, ChatgateError):
        log.warning("stream failed after it started: %s", exc.message)
        return sse.encode_error(exc)
    log.exception("stream failed after it started")
    return sse.encode_error(ChatgateError("internal error", code="internal_error"))
