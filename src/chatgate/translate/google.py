"""Google's extensions on an OpenAI request: ``extra_body.google`` and ``extra_content.google``.

They are decoded and checked here, once per request, before any mapping: ``options`` gives
``extra_body.google`` as typed fields, ``message_extras`` every message's, part's and tool
call's ``extra_content.google``. The mappers read those values and never the raw dicts.

Keys are accepted in snake_case (as Google documents them) and in camelCase (as some clients
send them): the dictionary is normalised to snake_case once, then each key is mapped to its
Gemini field. Nested objects (safety settings, native tools) are converted to the Gemini
wire types, so a wrong value is a 400 naming its path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import UNSET

from chatgate.errors import InvalidRequest
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate.parts import RESOLUTIONS

log = logging.getLogger(__name__)

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")
_SNAKE_HUMP = re.compile(r"_([a-z0-9])")

# Gateways sometimes send Gemini's dummy signature base64-encoded; Gemini wants the literal.
_SKIP_SIGNATURE_B64 = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I"


def snake(key: str) -> str:
    return _CAMEL_HUMP.sub(r"_\1", key).lower()


def camelize(value: Any) -> Any:
    """Rewrite dictionary keys to lowerCamelCase, recursively (Gemini's JSON names)."""
    if isinstance(value, dict):
        return {_SNAKE_HUMP.sub(lambda m: m.group(1).upper(), k): camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def convert(value: Any, kind: Any, param: str, *, camel: bool = True) -> Any:
    """A Google-shaped dict (either casing) → a Gemini wire type; errors name the path."""
    try:
        return msgspec.convert(camelize(value) if camel else value, kind)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `$")
        if not message:
            message, where = str(exc), ""
        raise InvalidRequest(f"{param}: {message}", param=param + where.rstrip("`")) from None


# --- extra_content.google ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Extra:
    """One ``extra_content.google`` (``vertex`` accepted too), decoded and checked."""

    thought: bool | None = None
    thought_signature: str | None = None


NO_EXTRA = Extra()


@dataclass(frozen=True, slots=True)
class MessageExtras:
    """The ``extra_content.google`` of one message and of what it holds.

    Each key is read where it means something: ``thought`` and ``thought_signature`` on user
    and assistant messages and their content parts, ``thought_signature`` on tool calls,
    ``parts`` (multimodal function responses) on tool and function messages."""

    own: Extra = NO_EXTRA
    content: tuple[Extra, ...] = ()  # by content part; () for string content
    calls: tuple[Extra, ...] = ()  # by tool call
    parts: list[g.FunctionResponsePart] | None = None

    def part(self, j: int) -> Extra:
        return self.content[j] if self.content else NO_EXTRA

    def call(self, i: int) -> Extra:
        return self.calls[i] if self.calls else NO_EXTRA


NO_MESSAGE_EXTRAS = MessageExtras()


def message_extras(messages: list[o.Message]) -> tuple[MessageExtras, ...]:
    """Every message's extensions, by message; () when no message has any."""
    found: list[MessageExtras] | None = None
    for i, message in enumerate(messages):
        if message.extra_content is UNSET and type(message.content) is str and type(message) is not o.AssistantMessage:
            continue  # the commonest message holds no extension: kept cheap
        decode = _BY_ROLE.get(type(message))  # system and developer messages have none
        extras = decode(message, i) if decode is not None else NO_MESSAGE_EXTRAS
        if extras is not NO_MESSAGE_EXTRAS:
            if found is None:
                found = [NO_MESSAGE_EXTRAS] * len(messages)
            found[i] = extras
    return tuple(found) if found is not None else ()


def _turn_extras(message: o.UserMessage | o.AssistantMessage, index: int) -> MessageExtras:
    items = message.content if type(message.content) is list else ()
    calls = message.tool_calls if type(message) is o.AssistantMessage and message.tool_calls is not UNSET else ()
    if message.extra_content is UNSET and not (items and _any_extra(items)) and not (calls and _any_extra(calls)):
        return NO_MESSAGE_EXTRAS
    param = f"messages[{index}]"
    return MessageExtras(
        own=_extra(message.extra_content, param),
        content=tuple(_extra(p.extra_content, f"{param}.content[{j}]") for j, p in enumerate(items)),
        calls=tuple(_extra(c.extra_content, f"{param}.tool_calls[{i}]", thought=False) for i, c in enumerate(calls)),
    )


def _any_extra(holders: Iterable[o.UserPart | o.AssistantPart | o.ToolCall]) -> bool:
    for holder in holders:
        if holder.extra_content is not UNSET:
            return True
    return False


def _result_extras(message: o.ToolMessage | o.FunctionMessage, index: int) -> MessageExtras:
    if message.extra_content is UNSET:
        return NO_MESSAGE_EXTRAS
    value = _google(message.extra_content).get("parts")
    if value is None:
        return NO_MESSAGE_EXTRAS
    return MessageExtras(parts=function_response_parts(value, f"messages[{index}].extra_content.google.parts"))


_BY_ROLE: dict[type, Any] = {
    o.UserMessage: _turn_extras,
    o.AssistantMessage: _turn_extras,
    o.ToolMessage: _result_extras,
    o.FunctionMessage: _result_extras,
}


def _google(extra_content: Any) -> dict[str, Any]:
    """The ``google`` object of an ``extra_content`` (``vertex`` accepted too), snake_cased."""
    if not isinstance(extra_content, dict):
        return {}
    merged: dict[str, Any] = {}
    for vendor in ("vertex", "google"):  # google wins
        inner = extra_content.get(vendor)
        if isinstance(inner, dict):
            merged.update({snake(k): v for k, v in inner.items()})
    return merged


def _extra(extra_content: Any, param: str, *, thought: bool = True) -> Extra:
    """``param`` is the path of the holder (a message, a part, a tool call)."""
    if extra_content is UNSET:
        return NO_EXTRA
    raw = _google(extra_content)
    where = f"{param}.extra_content.google"
    flag = _thought_flag(raw.get("thought"), f"{where}.thought") if thought else None
    signature = _signature(raw.get("thought_signature"), f"{where}.thought_signature")
    return Extra(flag, signature) if flag is not None or signature is not None else NO_EXTRA


def _signature(value: Any, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest("thought_signature must be a non-empty base64 string", param=param)
    if value.rstrip("=") == _SKIP_SIGNATURE_B64:
        return g.SKIP_THOUGHT_SIGNATURE
    return value


def _thought_flag(value: Any, param: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidRequest("thought must be a boolean", param=param)


def function_response_parts(value: Any, param: str) -> list[g.FunctionResponsePart]:
    """``extra_content.google.parts`` of a tool message: multimodal function responses, in
    Google's shapes and either casing (``file_data``/``fileData``, ``mime_type``...)."""
    if not isinstance(value, list):
        raise InvalidRequest("extra_content.google.parts must be a list", param=param)
    parts: list[g.FunctionResponsePart] = []
    for i, item in enumerate(value):
        part: g.FunctionResponsePart = convert(item, g.FunctionResponsePart, f"{param}[{i}]")
        if part.inline_data is None and part.file_data is None:
            raise InvalidRequest("a function response part needs inline_data or file_data", param=f"{param}[{i}]")
        parts.append(part)
    return parts


# --- extra_body.google ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoogleOptions:
    thinking_config: g.ThinkingConfig | None = None
    thought_tag_marker: str | None = None
    safety_settings: list[g.SafetySetting] | None = None
    cached_content: str | None = None
    labels: dict[str, str] | None = None
    tools: list[g.Tool] = field(default_factory=list)
    media_resolution: str | None = None
    stream_function_call_arguments: bool = False
    top_k: float | None = None
    speech_config: dict[str, Any] | None = None
    image_config: dict[str, Any] | None = None


_NATIVE_TOOLS = frozenset(g.Tool.__struct_fields__) - {"function_declarations"}


_NO_OPTIONS = GoogleOptions()  # shared, never mutated: what most requests have


def options(request: o.ChatCompletionRequest) -> GoogleOptions:
    if request.google is UNSET and (request.extra_body is None or request.extra_body.google is UNSET):
        return _NO_OPTIONS
    raw: dict[str, Any] = {}
    # Top-level "google" is accepted too; extra_body.google wins where both set a key.
    for source, where in (
        (request.google, "google"),
        (request.extra_body and request.extra_body.google, "extra_body.google"),
    ):
        if isinstance(source, dict):
            raw.update({snake(k): (v, f"{where}.{k}") for k, v in source.items()})
    if not raw:
        return GoogleOptions()
    out: dict[str, Any] = {}
    for key, (value, param) in raw.items():
        if value is None:
            continue
        if key == "thinking_config":
            out[key] = _thinking_config(value, param)
        elif key == "thought_tag_marker":
            if not isinstance(value, str) or not value.strip() or any(c in value for c in "<>"):
                raise InvalidRequest("thought_tag_marker must be a non-empty tag name", param=param)
            out[key] = value.strip()
        elif key == "safety_settings":
            out[key] = convert(value, list[g.SafetySetting], param)
        elif key in ("cached_content",):
            out[key] = _string(value, param)
        elif key == "labels":
            out[key] = convert(value, dict[str, str], param, camel=False)  # label keys are data
        elif key == "tools":
            out[key] = native_tools(value, param)
        elif key == "media_resolution":
            out[key] = media_resolution(value, param)
        elif key == "stream_function_call_arguments":
            if not isinstance(value, bool):
                raise InvalidRequest("stream_function_call_arguments must be a boolean", param=param)
            out[key] = value
        elif key == "top_k":
            out[key] = convert(value, float, param)
        elif key in ("speech_config", "image_config"):
            out[key] = camelize(convert(value, dict[str, Any], param))
        else:
            log.debug("ignoring unknown extension %s", param)
    return GoogleOptions(**out)


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest("must be a non-empty string", param=param)
    return value


def _thinking_config(value: Any, param: str) -> g.ThinkingConfig:
    config: g.ThinkingConfig = convert(value, g.ThinkingConfig, param)
    if config.thinking_level is not None:
        config.thinking_level = config.thinking_level.upper()
    if config.thinking_level is not None and config.thinking_budget is not None:
        raise InvalidRequest("give thinking_budget or thinking_level, not both", param=param)
    return config


def native_tools(value: Any, param: str) -> list[g.Tool]:
    """Google's own tools, one kind per ``Tool`` object (pitfall B20)."""
    if not isinstance(value, list):
        value = [value]
    tools: list[g.Tool] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequest("each Google tool must be an object", param=f"{param}[{i}]")
        for key, body in item.items():
            name = snake(key)
            if name not in _NATIVE_TOOLS:
                known = ", ".join(sorted(_NATIVE_TOOLS))
                raise InvalidRequest(f"unknown Google tool `{key}` (known: {known})", param=f"{param}[{i}].{key}")
            tools.append(convert({name: body if body is not None else {}}, g.Tool, f"{param}[{i}]"))
    return tools


def media_resolution(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("media_resolution must be a string", param=param)
    level = value.upper().removeprefix("MEDIA_RESOLUTION_").lower()
    if level not in RESOLUTIONS:
        raise InvalidRequest("media_resolution must be one of low, medium, high", param=param)
    return RESOLUTIONS[level]
