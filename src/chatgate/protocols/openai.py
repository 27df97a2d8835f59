"""OpenAI Chat Completions wire types: request, response, stream chunk, model list.

A leaf module: it imports msgspec and nothing of chatgate's. Field order follows the API
reference (https://platform.openai.com/docs/api-reference/chat/create); Google's extensions
(``extra_body.google``, ``extra_content.google``) come last, in their own block.

Ranges are declared where OpenAI enforces them, so a decode error names the JSON path of
the offending field (``$.messages[2].content``). Unknown fields are ignored, as Vertex does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

# --- request: content parts -------------------------------------------------------------

ExtraContent = dict[str, Any]  # {"google": {...}}; read by the translators


class _Part(Struct, tag_field="type", kw_only=True):
    extra_content: ExtraContent | UnsetType = UNSET


class TextPart(_Part, tag="text"):
    text: str


class ImageURL(Struct, kw_only=True):
    url: str
    detail: Literal["auto", "low", "high"] | UnsetType = UNSET


class ImagePart(_Part, tag="image_url"):
    # Vertex documents a bare string as well as OpenAI's {"url": ...} object.
    image_url: str | ImageURL


class InputAudio(Struct, kw_only=True):
    data: str
    format: str


class AudioPart(_Part, tag="input_audio"):
    input_audio: InputAudio


class File(Struct, kw_only=True):
    file_data: str | UnsetType = UNSET
    file_id: str | UnsetType = UNSET
    filename: str | UnsetType = UNSET


class FilePart(_Part, tag="file"):
    file: File


class RefusalPart(_Part, tag="refusal"):
    refusal: str


UserPart = TextPart | ImagePart | AudioPart | FilePart
AssistantPart = TextPart | RefusalPart

# --- request: messages -------------------------------------------------------------------


class _Message(Struct, tag_field="role", kw_only=True):
    name: str | None | UnsetType = UNSET
    extra_content: ExtraContent | UnsetType = UNSET


# An empty content array is refused here, so the error names `messages[i].content`.
TextParts = Annotated[list[TextPart], Meta(min_length=1)]


class SystemMessage(_Message, tag="system"):
    content: str | TextParts


class DeveloperMessage(_Message, tag="developer"):
    content: str | TextParts


class UserMessage(_Message, tag="user"):
    content: str | Annotated[list[UserPart], Meta(min_length=1)]


class FunctionCall(Struct, kw_only=True):
    name: str
    arguments: str


class ToolCall(Struct, kw_only=True):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall
    extra_content: ExtraContent | UnsetType = UNSET


class AssistantMessage(_Message, tag="assistant"):
    content: str | list[AssistantPart] | None = None
    refusal: str | None | UnsetType = UNSET
    tool_calls: list[ToolCall] | None | UnsetType = UNSET
    function_call: FunctionCall | None | UnsetType = UNSET
    audio: dict[str, Any] | None | UnsetType = UNSET


class ToolMessage(_Message, tag="tool"):
    content: str | TextParts
    tool_call_id: str


class FunctionMessage(_Message, tag="function"):
    content: str | None


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage

# --- request: tools and formats ----------------------------------------------------------


class FunctionDefinition(Struct, kw_only=True):
    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class Tool(Struct, kw_only=True):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Struct, kw_only=True):
    name: str


class NamedToolChoice(Struct, kw_only=True):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required", "validated"] | NamedToolChoice


class JSONSchemaFormat(Struct, kw_only=True):
    name: str
    description: str | UnsetType = UNSET
    # "schema" shadows nothing in msgspec; kept verbatim as the wire name.
    schema: dict[str, Any] | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class _Format(Struct, tag_field="type", kw_only=True):
    pass


class TextFormat(_Format, tag="text"):
    pass


class JSONObjectFormat(_Format, tag="json_object"):
    pass


class JSONSchemaResponseFormat(_Format, tag="json_schema"):
    json_schema: JSONSchemaFormat


ResponseFormat = TextFormat | JSONObjectFormat | JSONSchemaResponseFormat


class StreamOptions(Struct, kw_only=True):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ExtraBody(Struct, kw_only=True):
    google: dict[str, Any] | UnsetType = UNSET
    chatgate: Any = UNSET  # chatgate's own knobs, checked by translate/chatgate.py


# --- request ------------------------------------------------------------------------------

Temperature = Annotated[float, Meta(ge=0, le=2)]
Probability = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
# OpenAI's integers are int64; beyond that a client meant something else (and backends overflow).
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
PositiveInt = Annotated[int, Meta(ge=1, le=2**63 - 1)]
# A model name goes into URLs and logs: printable characters only (a trailing newline included).
ModelName = Annotated[str, Meta(pattern=r"\A[^\x00-\x1f\x7f]*\Z", max_length=256)]
StopList = Annotated[list[str], Meta(max_length=4)]


class ChatCompletionRequest(Struct, kw_only=True):
    messages: Annotated[list[Message], Meta(min_length=1)]
    model: ModelName | UnsetType = UNSET
    audio: dict[str, Any] | None | UnsetType = UNSET
    frequency_penalty: Penalty | None = None
    function_call: Literal["none", "auto"] | NamedFunction | None | UnsetType = UNSET
    functions: list[FunctionDefinition] | None | UnsetType = UNSET
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    max_completion_tokens: PositiveInt | None = None
    max_tokens: PositiveInt | None = None
    metadata: dict[str, str] | None = None
    modalities: list[Literal["text", "audio", "image"]] | None = None
    n: Annotated[int, Meta(ge=1, le=8)] | None = None  # Vertex's candidateCount allows at most 8
    parallel_tool_calls: bool | None = None
    prediction: dict[str, Any] | None = None
    presence_penalty: Penalty | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    response_format: ResponseFormat | None = None
    seed: Int64 | None = None
    service_tier: str | None = None
    stop: str | StopList | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    tool_choice: ToolChoice | None | UnsetType = UNSET
    tools: list[Tool] | None | UnsetType = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    top_p: Probability | None = None
    user: str | None = None
    web_search_options: dict[str, Any] | None = None
    # Google's extensions: the body literally carries "extra_body": {"google": {...}};
    # some clients put "google" at the top level instead.
    extra_body: ExtraBody | None = None
    google: dict[str, Any] | None | UnsetType = UNSET
    # chatgate's own knobs (extra_body.chatgate; the OpenAI SDK sends it at the top level).
    chatgate: Any = UNSET

    def __post_init__(self) -> None:
        # OpenAI's API takes `null` for an optional parameter as "the default"; past decoding
        # an absent parameter is UNSET, whatever the client wrote.
        for name in _NULL_IS_UNSET:
            if getattr(self, name) is None:
                setattr(self, name, UNSET)


# Fields whose default is UNSET (not None) that clients may send as `null`.
_NULL_IS_UNSET = ("function_call", "functions", "tool_choice", "tools", "google")
REQUEST_FIELDS = frozenset(ChatCompletionRequest.__struct_fields__)

# --- response -----------------------------------------------------------------------------


class FunctionCallOut(Struct, kw_only=True):
    name: str
    arguments: str


class ToolCallOut(Struct, kw_only=True):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut
    extra_content: ExtraContent | UnsetType = UNSET


class ResponseMessage(Struct, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | UnsetType = UNSET
    function_call: FunctionCallOut | UnsetType = UNSET
    audio: dict[str, Any] | UnsetType = UNSET
    annotations: list[dict[str, Any]] | UnsetType = UNSET
    extra_content: ExtraContent | UnsetType = UNSET


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class Choice(Struct, kw_only=True):
    index: int
    message: ResponseMessage
    finish_reason: FinishReason
    logprobs: dict[str, Any] | None = None


class Usage(Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int] | UnsetType = UNSET
    completion_tokens_details: dict[str, int] | UnsetType = UNSET
    extra_properties: dict[str, Any] | UnsetType = UNSET


class ChatCompletion(Struct, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | UnsetType = UNSET
    system_fingerprint: str = ""


# --- stream chunk -------------------------------------------------------------------------


class FunctionDelta(Struct, kw_only=True):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ToolCallDelta(Struct, kw_only=True):
    index: int
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: FunctionDelta | UnsetType = UNSET
    extra_content: ExtraContent | UnsetType = UNSET


class Delta(Struct, kw_only=True):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | None | UnsetType = UNSET
    refusal: str | None | UnsetType = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET
    function_call: FunctionDelta | UnsetType = UNSET
    audio: dict[str, Any] | UnsetType = UNSET
    extra_content: ExtraContent | UnsetType = UNSET


class ChunkChoice(Struct, kw_only=True):
    index: int
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(Struct, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    system_fingerprint: str = ""
    # None on every chunk but the last when include_usage is on; absent otherwise.
    usage: Usage | None | UnsetType = UNSET


# --- models -------------------------------------------------------------------------------


class Model(Struct, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Model] = field(default_factory=list)


# One encoder, reused: msgspec encoders are thread-safe and cheaper when shared.
encoder = msgspec.json.Encoder()
request_decoder = msgspec.json.Decoder(ChatCompletionRequest)
