"""Function calling on a local model: what the model is told, what it may write, and how
its writing becomes Gemini ``functionCall`` parts.

The call format is the Hermes one (Qwen's and NousResearch's chat templates use it)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

A template that knows this format (it mentions ``tools`` and ``<tool_call>``) renders the
tool list and past calls itself. Other templates, SmolLM2's included, get the generic
rendering of this module: the tool list and the format in the system prompt, past calls
as assistant text in the same format, and tool results as user turns holding
``<tool_response>`` blocks.

What the model writes is enforced by a grammar (``grammar()``): after ``<tool_call>`` only
a declared (and allowed) name, then arguments valid against that function's schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chatgate.engines.local import schema as schemas
from chatgate.engines.local.partial import ArgsReader
from chatgate.errors import InvalidRequest
from chatgate.protocols import functions as rules
from chatgate.protocols import gemini as g

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
# The frame before a call's arguments (and, from the second call on, the end of the last one).
_HEADER = re.compile(r'(?:\}\s*</tool_call>)?\s*<tool_call>\s*\{\s*"name"\s*:\s*"([^"]*)"\s*,\s*"arguments"\s*:\s*')


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    description: str | None
    parameters: dict[str, Any]  # JSON Schema, validated for llguidance


@dataclass(frozen=True, slots=True)
class Toolset:
    """The request's functions and how the model may use them."""

    functions: tuple[Function, ...]
    mode: str  # AUTO | ANY | NONE (VALIDATED behaves as AUTO: every call is valid anyway)
    allowed: tuple[str, ...]  # the names the model may call

    @property
    def may_call(self) -> bool:
        return self.mode != "NONE" and bool(self.allowed)


def toolset(request: g.GenerateContentRequest) -> Toolset | None:
    """The request's function declarations and calling config, checked; None without tools."""
    functions: list[Function] = []
    seen: set[str] = set()
    position = 0
    for tool in request.tools or ():
        # Google's native tools were refused by capabilities.check (prompt.output).
        for declaration in tool.function_declarations or ():
            param = f"tools[{position}].function"
            position += 1
            rules.check_name(declaration.name, f"{param}.name", seen)
            functions.append(Function(declaration.name, declaration.description, _parameters(declaration, param)))
    config = (request.tool_config.function_calling_config if request.tool_config else None) or g.FunctionCallingConfig()
    mode = (config.mode or "AUTO").upper()
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        raise InvalidRequest(f"unknown function calling mode {config.mode!r}", param="tool_choice")
    mode = {"VALIDATED": "AUTO", "MODE_UNSPECIFIED": "AUTO"}.get(mode, mode)
    names = [f.name for f in functions]
    allowed = list(config.allowed_function_names or ())
    if not functions:
        if mode == "ANY" or allowed:
            raise rules.no_functions()
        return None
    for name in allowed:
        if name not in seen:
            raise rules.unknown_choice(name)
    return Toolset(tuple(functions), mode, tuple(allowed or names))


def _parameters(declaration: g.FunctionDeclaration, param: str) -> dict[str, Any]:
    where = f"{param}.parameters"
    if declaration.parameters_json_schema is not None:
        found = declaration.parameters_json_schema
    elif declaration.parameters is not None:
        found = schemas.from_openapi(declaration.parameters, where)
    else:
        return schemas.NO_ARGUMENTS
    found = schemas.validate(found, where, f"the parameters of function `{declaration.name}`")
    if found.get("type", "object") != "object":
        raise InvalidRequest(
            f"the parameters of function `{declaration.name}` must be an object schema",
            param=where,
            code="invalid_schema",
        )
    return {**found, "type": "object"}


# --- the prompt -----------------------------------------------------------------------------


def template_tools(tools: Toolset) -> list[dict[str, Any]]:
    """The tool list in the shape chat templates take (OpenAI's)."""
    return [
        {
            "type": "function",
            "function": {"name": f.name, "description": f.description or "", "parameters": f.parameters},
        }
        for f in tools.functions
        if f.name in tools.allowed
    ]


def system_text(tools: Toolset, *, parallel: bool) -> str:
    """The generic tool instructions, for templates without tool support."""
    listing = "\n".join(json.dumps(t["function"], ensure_ascii=False) for t in template_tools(tools))
    lines = [
        "You can call functions. Their names, descriptions and JSON Schema parameters:",
        "<tools>",
        listing,
        "</tools>",
        "To call a function, answer with its name and arguments in this exact format:",
        f'{OPEN}\n{{"name": "<function name>", "arguments": <JSON object>}}\n{CLOSE}',
    ]
    if parallel:
        lines.append(f"To call several functions, write one {OPEN} block for each.")
    if tools.mode == "ANY":
        lines.append("You must call a function now.")
    else:
        lines.append("Call a function when it helps to answer; otherwise answer the user directly.")
    return "\n".join(lines)


def call_text(call: g.FunctionCall) -> str:
    """A past call, as the model would have written it."""
    body = {"name": call.name or "", "arguments": call.args or {}}
    return f"{OPEN}\n{json.dumps(body, ensure_ascii=False)}\n{CLOSE}"


def response_text(response: g.FunctionResponse) -> str:
    body = {"name": response.name, "response": response.response}
    return f"<tool_response>\n{json.dumps(body, ensure_ascii=False)}\n</tool_response>"


def template_call(call: g.FunctionCall) -> dict[str, Any]:
    """A past call in the shape tool-aware chat templates take."""
    return {
        "id": call.id or "",
        "type": "function",
        "function": {"name": call.name or "", "arguments": call.args or {}},
    }


# --- the grammar ----------------------------------------------------------------------------


def grammar(tools: Toolset, *, parallel: bool, opened: bool, answer: dict[str, Any] | None) -> str:
    """A Lark grammar (llguidance) for what the model may write.

    ``opened``: the model already wrote ``<tool_call>`` (AUTO mode, caught in free text), so
    the grammar starts right after it. ``answer``: the JSON Schema of a structured answer
    the model may give instead of calls (AUTO with ``responseJsonSchema``)."""
    by_name = {f.name: f for f in tools.functions}
    rules = []
    alternatives = []
    for i, name in enumerate(tools.allowed):
        head = json.dumps(f'{{"name": "{name}", "arguments": ')
        rules.append(f"call_{i}: {head} args_{i}")
        rules.append(f"args_{i}: {schemas.json_rule(by_name[name].parameters)}")
        alternatives.append(f"call_{i}")
    body = f'"\\n" ({" | ".join(alternatives)}) "}}\\n{CLOSE}"'
    rules.append(f"first: {body}")
    rules.append(f'call: "{OPEN}" {body}')
    # A newline may follow the last call: were it the start of another call, a model that
    # writes a newline before ending its turn would be forced into one more call.
    more = ' ("\\n" call)* "\\n"?' if parallel else ' "\\n"?'
    calls = f'"{OPEN}" first{more}' if not opened else f"first{more}"
    if answer is not None:
        rules.append(f"answer: {schemas.json_rule(answer)}")
        start = "start: answer | calls"
    else:
        start = "start: calls"
    return "\n".join([start, f"calls: {calls}", *rules])


# --- reading calls back ---------------------------------------------------------------------


@dataclass(slots=True)
class CallStart:
    id: str
    name: str


@dataclass(slots=True)
class CallArgs:
    id: str
    args: list[g.PartialArg]


@dataclass(slots=True)
class CallEnd:
    id: str
    args: dict[str, Any] | None  # None: cut short (max tokens, cancellation)


CallEvent = CallStart | CallArgs | CallEnd


class CallReader:
    """Grammar-constrained call text → call events, as it is written."""

    def __init__(self, *, opened: bool = False) -> None:
        self._buffer = OPEN if opened else ""
        self._call: CallStart | None = None
        self._reader = ArgsReader()
        self._args: list[str] = []

    def feed(self, text: str) -> list[CallEvent]:
        events: list[CallEvent] = []
        while text:
            if self._call is None:
                self._buffer += text
                text = ""
                match = _HEADER.match(self._buffer)
                if match is None:
                    continue
                self._call = CallStart(rules.new_call_id(), match.group(1))
                events.append(self._call)
                text, self._buffer = self._buffer[match.end() :], ""
                self._reader, self._args = ArgsReader(), []
                continue
            partial = self._reader.feed(text)
            used = self._reader.used
            self._args.append(text[:used])
            if partial:
                events.append(CallArgs(self._call.id, partial))
            text = text[used:]
            if self._reader.done:
                events.append(CallEnd(self._call.id, json.loads("".join(self._args))))
                self._call = None
        return events

    def finish(self) -> list[CallEvent]:
        """The end of generation: a call still open was cut short."""
        if self._call is None:
            return []
        call, self._call = self._call, None
        return [CallEnd(call.id, None)]
