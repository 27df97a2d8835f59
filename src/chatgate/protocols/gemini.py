"""Gemini ``generateContent`` wire types: the canonical request and response of chatgate.

A leaf module. Names are snake_case in Python and lowerCamelCase on the wire
(``rename="camel"``); absent fields are omitted (``omit_defaults``), so an encoded request
holds only what was set. Enum values are plain strings: Google adds values over time and a
response carrying one we do not know must still decode. Reference: the Vertex AI
``aiplatform.v1`` protos (``content.proto``, ``tool.proto``, ``prediction_service.proto``).
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

import msgspec
from msgspec import Struct


class _Wire(Struct, rename="camel", omit_defaults=True, kw_only=True):
    pass


# --- content ------------------------------------------------------------------------------


class Blob(_Wire, kw_only=True):
    mime_type: str
    data: str  # base64
    display_name: str | None = None


class FileData(_Wire, kw_only=True):
    mime_type: str | None = None
    file_uri: str
    display_name: str | None = None


class PartialArg(_Wire, kw_only=True):
    json_path: str
    string_value: str | None = None
    number_value: float | None = None
    bool_value: bool | None = None
    null_value: str | None = None
    will_continue: bool | None = None


class FunctionCall(_Wire, kw_only=True):
    id: str | None = None
    name: str | None = None
    args: dict[str, Any] | None = None
    partial_args: list[PartialArg] | None = None
    will_continue: bool | None = None


class FunctionResponsePart(_Wire, kw_only=True):
    inline_data: Blob | None = None
    file_data: FileData | None = None


class FunctionResponse(_Wire, kw_only=True):
    id: str | None = None
    name: str
    response: dict[str, Any]
    parts: list[FunctionResponsePart] | None = None


class ExecutableCode(_Wire, kw_only=True):
    language: str | None = None
    code: str | None = None


class CodeExecutionResult(_Wire, kw_only=True):
    outcome: str | None = None
    output: str | None = None


class MediaResolution(_Wire, kw_only=True):
    level: str


class VideoMetadata(_Wire, kw_only=True):
    start_offset: str | None = None
    end_offset: str | None = None
    fps: float | None = None


# The dummy thoughtSignature Google documents for function calls of histories Gemini did
# not produce: it makes Gemini skip its signature check.
SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator"


class Part(_Wire, kw_only=True):
    """One part: exactly one of the data fields, plus the thought metadata beside it."""

    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    executable_code: ExecutableCode | None = None
    code_execution_result: CodeExecutionResult | None = None
    thought: bool | None = None
    thought_signature: str | None = None  # base64 bytes, a sibling of the data field
    video_metadata: VideoMetadata | None = None
    media_resolution: MediaResolution | None = None


class Content(_Wire, kw_only=True):
    role: str | None = None  # "user" | "model"; absent on systemInstruction
    parts: list[Part] = msgspec.field(default_factory=list)


# --- request ------------------------------------------------------------------------------


class FunctionDeclaration(_Wire, kw_only=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # OpenAPI subset Schema
    parameters_json_schema: Any = None  # real JSON Schema; mutually exclusive with parameters


class Tool(_Wire, kw_only=True):
    """One kind of tool per object: function declarations, or one of Google's native tools."""

    function_declarations: list[FunctionDeclaration] | None = None
    google_search: dict[str, Any] | None = None
    google_search_retrieval: dict[str, Any] | None = None
    code_execution: dict[str, Any] | None = None
    url_context: dict[str, Any] | None = None
    google_maps: dict[str, Any] | None = None
    enterprise_web_search: dict[str, Any] | None = None
    retrieval: dict[str, Any] | None = None
    computer_use: dict[str, Any] | None = None


class FunctionCallingConfig(_Wire, kw_only=True):
    mode: str | None = None  # AUTO | ANY | NONE | VALIDATED
    allowed_function_names: list[str] | None = None
    stream_function_call_arguments: bool | None = None


class ToolConfig(_Wire, kw_only=True):
    function_calling_config: FunctionCallingConfig | None = None
    retrieval_config: dict[str, Any] | None = None


class SafetySetting(_Wire, kw_only=True):
    category: str
    threshold: str
    method: str | None = None


class ThinkingConfig(_Wire, kw_only=True):
    include_thoughts: bool | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None


class GenerationConfig(_Wire, kw_only=True):
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    candidate_count: int | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None
    response_json_schema: Any = None
    response_logprobs: bool | None = None
    logprobs: int | None = None
    response_modalities: list[str] | None = None
    media_resolution: str | None = None
    speech_config: dict[str, Any] | None = None
    image_config: dict[str, Any] | None = None
    thinking_config: ThinkingConfig | None = None


class GenerateContentRequest(_Wire, kw_only=True):
    contents: list[Content]
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    safety_settings: list[SafetySetting] | None = None
    generation_config: GenerationConfig | None = None
    cached_content: str | None = None
    labels: dict[str, str] | None = None


# --- response -----------------------------------------------------------------------------


class SafetyRating(_Wire, kw_only=True):
    category: str | None = None
    probability: str | None = None
    probability_score: float | None = None
    severity: str | None = None
    severity_score: float | None = None
    blocked: bool | None = None


class Candidate(_Wire, kw_only=True):
    index: int | None = None
    content: Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None
    safety_ratings: list[SafetyRating] | None = None
    citation_metadata: dict[str, Any] | None = None
    grounding_metadata: dict[str, Any] | None = None
    url_context_metadata: dict[str, Any] | None = None
    avg_logprobs: float | None = None
    logprobs_result: dict[str, Any] | None = None
    token_count: int | None = None


class PromptFeedback(_Wire, kw_only=True):
    block_reason: str | None = None
    block_reason_message: str | None = None
    safety_ratings: list[SafetyRating] | None = None


class UsageMetadata(_Wire, kw_only=True):
    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    thoughts_token_count: int | None = None
    cached_content_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    total_token_count: int | None = None
    traffic_type: str | None = None
    prompt_tokens_details: list[dict[str, Any]] | None = None
    candidates_tokens_details: list[dict[str, Any]] | None = None
    cache_tokens_details: list[dict[str, Any]] | None = None
    tool_use_prompt_tokens_details: list[dict[str, Any]] | None = None


class GenerateContentResponse(_Wire, kw_only=True):
    candidates: list[Candidate] | None = None
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    create_time: str | None = None
    response_id: str | None = None


class CachedContentUsage(_Wire, kw_only=True):
    total_token_count: int | None = None


class CachedContent(_Wire, kw_only=True):
    """A context cache (``cachedContents``): what later requests start with, for a model,
    until ``expireTime``. ``ttl`` ("3600s") is input only."""

    name: str | None = None
    display_name: str | None = None
    model: str | None = None
    system_instruction: Content | None = None
    contents: list[Content] | None = None
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    create_time: str | None = None
    update_time: str | None = None
    expire_time: str | None = None
    ttl: str | None = None
    usage_metadata: CachedContentUsage | None = None


class ListCachedContentsResponse(_Wire, kw_only=True):
    cached_contents: list[CachedContent] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


class RpcStatus(_Wire, kw_only=True):
    """``google.rpc.Status``, the ``error`` member of a Google error body."""

    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: list[dict[str, Any]] | None = None


class CountTokensRequest(_Wire, kw_only=True):
    """``:countTokens``: Vertex's form (``contents`` beside the request's other fields) or the
    Gemini API's (the whole request under ``generateContentRequest``)."""

    contents: list[Content] | None = None
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    generation_config: GenerationConfig | None = None
    generate_content_request: GenerateContentRequest | None = None

    def as_request(self) -> GenerateContentRequest:
        """The request whose prompt is counted."""
        if self.generate_content_request is not None:
            return self.generate_content_request
        return GenerateContentRequest(
            contents=self.contents or [],
            system_instruction=self.system_instruction,
            tools=self.tools,
            generation_config=self.generation_config,
        )


class CountTokensResponse(_Wire, kw_only=True):
    total_tokens: int
    total_billable_characters: int | None = None
    cached_content_token_count: int | None = None
    prompt_tokens_details: list[dict[str, Any]] | None = None
    cache_tokens_details: list[dict[str, Any]] | None = None


class PublisherModel(_Wire, kw_only=True):
    """A model in Vertex's Model Garden form (``publishers/{publisher}/models/{id}``)."""

    name: str
    version_id: str | None = None
    open_source_category: str | None = None
    launch_stage: str | None = None


class ListPublisherModelsResponse(_Wire, kw_only=True):
    publisher_models: list[PublisherModel]
    next_page_token: str | None = None


class Model(_Wire, kw_only=True):
    """A model in the Gemini API's form (``models/{id}``)."""

    name: str
    base_model_id: str | None = None
    version: str | None = None
    display_name: str | None = None
    description: str | None = None
    input_token_limit: int | None = None
    output_token_limit: int | None = None
    supported_generation_methods: list[str] | None = None


class ListModelsResponse(_Wire, kw_only=True):
    models: list[Model]
    next_page_token: str | None = None


encoder = msgspec.json.Encoder()
response_decoder = msgspec.json.Decoder(GenerateContentResponse)
request_decoder = msgspec.json.Decoder(GenerateContentRequest)
count_request_decoder = msgspec.json.Decoder(CountTokensRequest)


# --- proto field names ---------------------------------------------------------------------
# Google parses JSON as protobuf does: a field may be spelled lowerCamelCase or as in the proto
# (snake_case), and Google's own SDK sends some snake_case (``parameters_json_schema`` for a
# Python function's declaration). Free-form members (``args``, schemas) keep their keys.


def _struct_of(tp: Any) -> tuple[type[Struct] | None, bool]:
    """The Struct a field holds (itself, or as a list's items), and whether as a list."""
    if isinstance(tp, type) and issubclass(tp, Struct):
        return tp, False
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _struct_of(arg)
            if found[0] is not None:
                return found
    if origin is list:
        inner, _ = _struct_of(typing.get_args(tp)[0])
        return inner, inner is not None
    return None, False


@functools.cache
def _names(cls: type[Struct]) -> dict[str, tuple[str, type[Struct] | None, bool]]:
    names = {}
    for field in msgspec.structs.fields(cls):
        spec = (field.encode_name, *_struct_of(field.type))
        names[field.encode_name] = names[field.name] = spec
    return names


def proto_names(value: Any, cls: type[Struct]) -> Any:
    """``value`` (JSON as builtins) for ``cls`` with every field of every nested message
    spelled lowerCamelCase, as the decoder reads it."""
    if not isinstance(value, dict):
        return value
    names = _names(cls)
    out = {}
    for key, item in value.items():
        spec = names.get(key)
        if spec is None:
            out[key] = item
            continue
        name, inner, many = spec
        if inner is not None:
            if many and isinstance(item, list):
                item = [proto_names(element, inner) for element in item]
            elif not many:
                item = proto_names(item, inner)
        out[name] = item
    return out
