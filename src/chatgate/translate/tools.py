"""Function calling, both ways, independent of the engine that runs the model.

Request side: OpenAI ``tools``/``functions`` → ``functionDeclarations`` (parameters sent as
``parametersJsonSchema``: real JSON Schema, pitfall B1); ``tool_choice``/``function_call`` →
``toolConfig.functionCallingConfig``; assistant ``tool_calls`` → ``functionCall`` parts;
``tool`` messages → ``functionResponse`` parts.

Response side: ``functionCall`` → ``tool_calls`` entries.

Call ids: Gemini's ``functionCall.id`` is used as the OpenAI id when it sets one; otherwise
chatgate makes ``function-call-<uuid4>`` (the shape Vertex uses). On the way back, an id of
that synthetic shape is not sent to Gemini (it never saw it); any other id is echoed as
``functionCall.id`` / ``functionResponse.id``, which newer Gemini models require.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET

from chatgate.errors import InvalidRequest
from chatgate.protocols import functions
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate import google, schema


def gemini_id(call_id: str) -> str | None:
    """The id to send to Gemini for an OpenAI call id, or None for ids chatgate made up."""
    return None if functions.made_up(call_id) else call_id


# --- declarations and tool choice ---------------------------------------------------------


def declarations(request: o.ChatCompletionRequest) -> list[g.FunctionDeclaration]:
    defs: list[tuple[o.FunctionDefinition, str]] = []
    if isinstance(request.tools, list):
        defs += [(t.function, f"tools[{i}].function") for i, t in enumerate(request.tools)]
    if isinstance(request.functions, list):
        defs += [(f, f"functions[{i}]") for i, f in enumerate(request.functions)]
    out: list[g.FunctionDeclaration] = []
    seen: set[str] = set()
    for fn, param in defs:
        functions.check_name(fn.name, f"{param}.name", seen)
        decl = g.FunctionDeclaration(name=fn.name, description=fn.description or None)
        if isinstance(fn.parameters, dict):
            params = schema.json_schema(fn.parameters, f"{param}.parameters")
            # A parameter-less tool is sent without a schema at all (pitfall B2).
            if not schema.is_empty_object_schema(params):
                decl.parameters_json_schema = params
        out.append(decl)
    return out


_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY", "validated": "VALIDATED"}


def calling_config(request: o.ChatCompletionRequest, names: set[str], *, stream_arguments: bool) -> g.ToolConfig | None:
    choice: Any = request.tool_choice if request.tool_choice is not UNSET else None
    param = "tool_choice"
    if choice is None and request.function_call is not UNSET:
        choice, param = request.function_call, "function_call"
    if choice is None and not (stream_arguments and names):
        return None  # most requests
    config = g.FunctionCallingConfig()
    if isinstance(choice, str):
        if choice in ("required", "validated") and not names:
            raise functions.no_functions(param)
        config.mode = _MODES[choice]
    elif choice is not None:
        name = choice.function.name if isinstance(choice, o.NamedToolChoice) else choice.name
        if name not in names:
            raise functions.unknown_choice(name, param)
        config.mode, config.allowed_function_names = "ANY", [name]
    if stream_arguments and names:
        config.stream_function_call_arguments = True
    if config == g.FunctionCallingConfig():
        return None
    return g.ToolConfig(function_calling_config=config)


# --- history: calls and results -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """A call of the last assistant turn, for matching the tool results that follow."""

    name: str
    position: int


def arguments(text: str, param: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidRequest("function arguments must be a JSON object", param=param) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("function arguments must be a JSON object", param=param)
    return value


def call_parts(
    message: o.AssistantMessage, param: str, extras: google.MessageExtras, calls: dict[str, Call]
) -> list[g.Part]:
    """An assistant message's ``tool_calls`` (or legacy ``function_call``), in order, each
    with the thought signature it came with."""
    parts: list[g.Part] = []
    if isinstance(message.tool_calls, list):
        for i, call in enumerate(message.tool_calls):
            where = f"{param}.tool_calls[{i}]"
            part = g.Part(
                function_call=g.FunctionCall(
                    id=gemini_id(call.id),
                    name=call.function.name,
                    args=arguments(call.function.arguments, f"{where}.function.arguments"),
                ),
                thought_signature=extras.call(i).thought_signature,
            )
            calls[call.id] = Call(name=call.function.name, position=len(calls))
            parts.append(part)
    if isinstance(message.function_call, o.FunctionCall):
        fc = message.function_call
        parts.append(
            g.Part(
                function_call=g.FunctionCall(
                    name=fc.name, args=arguments(fc.arguments, f"{param}.function_call.arguments")
                )
            )
        )
        calls[""] = Call(name=fc.name, position=len(calls))
    return parts


def response_object(content: str, *, has_parts: bool) -> dict[str, Any]:
    """A tool's output as Gemini's ``response`` Struct: a JSON object is sent as it is,
    anything else as ``{"output": text}`` (the key Vertex documents). An object holding a
    ``$ref`` is a media reference on Gemini 3, so without media parts it is sent as text."""
    try:
        value = json.loads(content) if content.strip().startswith("{") else None
    except ValueError:
        value = None
    if isinstance(value, dict) and (has_parts or "$ref" not in content):
        return value
    return {"output": content}


def tool_result(
    message: o.ToolMessage | o.FunctionMessage,
    param: str,
    calls: dict[str, Call],
    parts: list[g.FunctionResponsePart] | None,
) -> tuple[int, g.Part]:
    """One result → (position of its call, ``functionResponse`` part). The name comes from
    the matching call; an explicit ``name`` on the message wins (pitfall B6)."""
    if isinstance(message, o.ToolMessage):
        call = calls.get(message.tool_call_id)
        if call is None:
            raise InvalidRequest(
                f"tool_call_id `{message.tool_call_id}` matches no tool call of the preceding assistant message",
                param=f"{param}.tool_call_id",
            )
        name = message.name if isinstance(message.name, str) else call.name
        call_id = gemini_id(message.tool_call_id)
        text = message.content if isinstance(message.content, str) else "".join(p.text for p in message.content)
    else:
        call = calls.get("")
        name = message.name if isinstance(message.name, str) else (call.name if call else "")
        if not name:
            raise InvalidRequest("a function message needs a name", param=f"{param}.name")
        call_id = None
        text = message.content or ""
    response = g.FunctionResponse(
        id=call_id, name=name, response=response_object(text, has_parts=bool(parts)), parts=parts or None
    )
    position = call.position if call is not None else len(calls)
    return position, g.Part(function_response=response)


# --- response side ------------------------------------------------------------------------


def arguments_text(args: dict[str, Any] | None) -> str:
    return json.dumps(args or {}, ensure_ascii=False, separators=(",", ":"))


def tool_call_out(call: g.FunctionCall, signature: str | None) -> o.ToolCallOut:
    out = o.ToolCallOut(
        id=call.id or functions.new_call_id(),
        function=o.FunctionCallOut(name=call.name or "", arguments=arguments_text(call.args)),
    )
    if signature:
        out.extra_content = {"google": {"thought_signature": signature}}
    return out
