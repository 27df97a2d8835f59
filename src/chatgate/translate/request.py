"""OpenAI ``ChatCompletionRequest`` → Gemini ``GenerateContentRequest`` (spec §1.2–§1.6).

Pure: data in, data out. What Gemini's request has no field for travels beside it in
``Rendering``: how to shape the answer (the model name to echo, the thought tag marker,
whether to send usage in the stream, ...) and the options the engine takes with the
request (``stream``, ``parallel_tool_calls``, ``tuning``). Model-dependent choices come from
``models.traits(model)``, a value.

The pieces: ``messages`` (contents), ``parts`` (media), ``tools`` (function calling),
``google`` (``extra_body.google``), ``chatgate`` (``extra_body.chatgate``), ``thinking``
(reasoning and thought tags), ``schema``.
"""

from __future__ import annotations

import logging

import msgspec
from msgspec import UNSET

from chatgate.errors import InvalidRequest
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.protocols.tuning import NO_TUNING, Tuning
from chatgate.translate import chatgate, google, messages, parts, schema, thinking, tools
from chatgate.translate.models import ModelTraits, traits

log = logging.getLogger(__name__)


class Rendering(msgspec.Struct, frozen=True, kw_only=True):  # a Struct: cheaper to make than a dataclass
    """What the Gemini request cannot carry: how to shape the OpenAI answer, and the
    engine's options (``engine.generate(model, request, stream=..., parallel_tool_calls=..., tuning=...)``)."""

    model: str
    stream: bool = False
    # OpenAI's parallel_tool_calls: False holds the model to one call per answer. The local
    # engine honours it; Gemini has no such switch and ignores it, as Vertex does.
    parallel_tool_calls: bool = True
    include_usage: bool = False
    # extra_body.google.thought_tag_marker: thought text is shown as <marker>…</marker>.
    thought_tag_marker: str | None = None
    # The request used the deprecated `functions`: answer with `function_call`.
    legacy_functions: bool = False
    # extra_body.chatgate: chatgate's own knobs for the engine (loop control).
    tuning: Tuning = NO_TUNING


# OpenAI parameters that are valid but have no Gemini counterpart: accepted, ignored, logged.
_IGNORED = (
    "audio",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "metadata",
    "prediction",
    "service_tier",
    "store",
    "user",
)

_EMPTY_CONFIG = g.GenerationConfig()
_MODALITIES = {"text": "TEXT", "image": "IMAGE", "audio": "AUDIO"}


def to_gemini(request: o.ChatCompletionRequest, model: str) -> tuple[g.GenerateContentRequest, Rendering]:
    model_traits = traits(model)
    # Google's extensions, decoded and checked once; the rest is mapping.
    extras = google.options(request)
    message_extras = google.message_extras(request.messages)
    media = parts.Media()
    system, contents = messages.contents(
        request.messages,
        message_extras,
        media,
        marker=extras.thought_tag_marker,
        part_level_detail=model_traits.gemini3,
    )
    messages.check_not_empty(contents)
    if log.isEnabledFor(logging.DEBUG):
        for name in _IGNORED:
            if getattr(request, name) not in (None, UNSET):
                log.debug("ignoring parameter %s: no Gemini equivalent", name)

    declarations = tools.declarations(request)
    gemini_tools = [g.Tool(function_declarations=declarations)] if declarations else []
    if request.web_search_options is not None:
        gemini_tools.append(g.Tool(google_search={}))  # Vertex: "No sub-options are supported."
    gemini_tools += extras.tools
    tool_config = tools.calling_config(
        request,
        {d.name for d in declarations},
        stream_arguments=extras.stream_function_call_arguments and bool(request.stream),
    )

    config = generation_config(request, model_traits)
    if extras.media_resolution or media.details:
        config.media_resolution = extras.media_resolution or _request_resolution(media.details or set())
    config.thinking_config = thinking.thinking_config(request.reasoning_effort, extras.thinking_config, model_traits)
    config.top_k = extras.top_k
    config.speech_config = extras.speech_config
    config.image_config = extras.image_config

    rendering = Rendering(
        model=model,
        stream=bool(request.stream),
        parallel_tool_calls=request.parallel_tool_calls is not False,
        include_usage=bool(request.stream and request.stream_options and request.stream_options.include_usage),
        thought_tag_marker=extras.thought_tag_marker,
        legacy_functions=request.functions is not UNSET and request.tools is UNSET,
        tuning=chatgate.tuning(request),
    )
    return (
        g.GenerateContentRequest(
            contents=contents,
            system_instruction=g.Content(parts=system) if system else None,
            tools=gemini_tools or None,
            tool_config=tool_config,
            safety_settings=extras.safety_settings,
            generation_config=config if config != _EMPTY_CONFIG else None,
            cached_content=extras.cached_content,
            labels=extras.labels,
        ),
        rendering,
    )


def generation_config(request: o.ChatCompletionRequest, model: ModelTraits = ModelTraits()) -> g.GenerationConfig:
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    config = g.GenerationConfig(
        temperature=request.temperature,
        top_p=request.top_p,
        # max_completion_tokens is the newer name; it wins when both are given.
        max_output_tokens=request.max_completion_tokens or request.max_tokens,
        candidate_count=request.n if request.n and request.n > 1 else None,
        stop_sequences=[s for s in stop if s] or None if stop else None,  # Gemini rejects []
        seed=request.seed,
    )
    if model.gemini3:
        # Gemini 3 rejects penalties (pitfall B18): valid OpenAI input, ignored.
        if request.presence_penalty is not None or request.frequency_penalty is not None:
            log.debug("ignoring presence/frequency penalty: not supported by Gemini 3 models")
    else:
        config.presence_penalty = request.presence_penalty
        config.frequency_penalty = request.frequency_penalty
    if request.modalities:
        wanted = [_MODALITIES[m] for m in request.modalities]
        if wanted != ["TEXT"]:
            config.response_modalities = wanted
    fmt = request.response_format
    if isinstance(fmt, o.TextFormat):
        config.response_mime_type = "text/plain"
    elif isinstance(fmt, o.JSONObjectFormat):
        config.response_mime_type = "application/json"
    elif isinstance(fmt, o.JSONSchemaResponseFormat):
        config.response_mime_type = "application/json"
        # `strict` has no Gemini counterpart: Gemini always follows the schema it is given.
        if isinstance(fmt.json_schema.schema, dict):
            config.response_json_schema = schema.json_schema(
                fmt.json_schema.schema, "response_format.json_schema.schema"
            )
    return config


def _request_resolution(details: set[str]) -> str:
    """Before Gemini 3, ``detail`` is request-level: one value for the whole request."""
    if len(details) > 1:
        raise InvalidRequest(
            "this model takes one image detail per request; got " + ", ".join(sorted(details)),
            param="messages",
        )
    return parts.RESOLUTIONS[details.pop()]
