"""``POST .../chat/completions``: parse, route, run, and answer in JSON or SSE.

The handler is thin: the body is decoded (``body.py``), translated (``translate/``), run on
the target engine, and the engine's Gemini chunks are translated back. A client that goes
away cancels the work: while waiting for a non-streaming answer a watcher listens for
``http.disconnect``; a stream is closed by the server when a write fails.
"""

from __future__ import annotations

import logging
from typing import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from chatgate.errors import ChatgateError
from chatgate.front import projects, sse
from chatgate.front.body import decode_chat_request, decode_object, read_body
from chatgate.front.disconnect import CLIENT_CLOSED, ClientGone, unless_disconnected
from chatgate.front.relay import relay_chat
from chatgate.front.state import AppState
from chatgate.front.targets import OPENAPI
from chatgate.protocols import gemini as g
from chatgate.protocols.openai import encoder
from chatgate.translate.request import Rendering, to_gemini
from chatgate.translate.response import fold, to_chat_completion
from chatgate.translate.stream import StreamTranslator

log = logging.getLogger("chatgate.chat")

async def chat_completions(request: Request) -> Response:
    state: AppState = request.app.state.chatgate
    project = request.path_params.get("project", state.settings.server.default_project)
    state.auth.check(request.headers, project)
    raw = await read_body(request, state.settings.server.max_body_bytes, state.settings.server.body_timeout)
    endpoint_id = request.path_params.get("endpoint", OPENAPI)

    endpoint = state.settings.endpoints.get(endpoint_id) if endpoint_id != OPENAPI else None
    if endpoint is not None:
        projects.check(endpoint.projects, project, f"endpoint {endpoint_id!r}")
    upstream = state.upstream(endpoint_id) if endpoint_id != OPENAPI else None
    if upstream is not None:
        return await relay_chat(upstream, request, raw, decode_object(raw))

    chat = decode_chat_request(raw)
    model = chat.model or None
    if endpoint_id == OPENAPI:
        target = state.targets.model(model)
        echo = model
        if target.engine is state.targets.gemini:
            projects.check(state.settings.gemini.projects, project, "Gemini")
    else:
        target = state.targets.endpoint(endpoint_id, model)
        echo = model or target.model
    gemini_request, rendering = to_gemini(chat, echo)  # type: ignore[arg-type]
    chunks = target.engine.generate(target.model, gemini_request, stream=rendering.stream,
                                    parallel_tool_calls=chat.parallel_tool_calls is not False)
    try:
        if rendering.stream:
            return await _stream(request, chunks, rendering, state)
        collected = await unless_disconnected(request.receive, _collect(chunks))
    except ClientGone:
        log.info("client went away; generation stopped")
        return Response(status_code=CLIENT_CLOSED)
    response = fold(collected)
    state.metrics.record_usage(rendering.model, response.usage_metadata)
    completion = to_chat_completion(response, rendering)  # Gemini's responseId when it has one
    return Response(encoder.encode(completion), media_type="application/json")


async def _collect(chunks: AsyncIterator[g.GenerateContentResponse]) -> list[g.GenerateContentResponse]:
    try:
        return [chunk async for chunk in chunks]
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def _stream(
    request: Request, chunks: AsyncIterator[g.GenerateContentResponse], rendering: Rendering, state: AppState
) -> Response:
    """Answer with SSE. The first chunk is awaited before the headers go out, so an error
    that happens before any output (queue full, prompt too long) keeps its HTTP status."""
    translator = StreamTranslator(rendering)
    try:
        first: g.GenerateContentResponse | None = await unless_disconnected(request.receive, anext(chunks, None))
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise

    async def events() -> AsyncIterator[bytes]:
        usage = first.usage_metadata if first is not None else None
        try:
            if first is not None:
                for chunk in translator.feed(first):
                    yield sse.encode_event(chunk)
                async for response in chunks:
                    usage = response.usage_metadata or usage
                    for chunk in translator.feed(response):
                        yield sse.encode_event(chunk)
            for chunk in translator.finish():
                yield sse.encode_event(chunk)
            yield sse.DONE
        except ChatgateError as exc:
            log.warning("stream failed after it started: %s", exc.message)
            yield sse.encode_error(exc)
        except Exception:
            log.exception("stream failed after it started")
            yield sse.encode_error(ChatgateError("internal error", code="internal_error"))
        finally:
            state.metrics.record_usage(rendering.model, usage)
            await chunks.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(sse.coalesced(events()), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)


