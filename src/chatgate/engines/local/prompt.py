"""The canonical request, as a local chat model sees it: chat-template messages, the
sampling options, and what the model may write (``Output``: free text, JSON under a schema,
function calls). What a text-only local model cannot do is refused first, by asking
``engines/capabilities.py`` (a 400 that says what); so is a schema the engine cannot enforce."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from chatgate.engines import capabilities
from chatgate.engines.local import schema as schemas
from chatgate.engines.local import tools as calls
from chatgate.errors import Unsupported
from chatgate.protocols import gemini as g

log = logging.getLogger(__name__)

# OpenAI's defaults, which the request's own values replace.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0
DEFAULT_TOP_K = 40  # llama.cpp's

Message = dict[str, Any]

# What a local model can do beyond text in and text out (see engines/capabilities.py).
CAPABILITIES = frozenset({"function calling"})


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    top_k: int = DEFAULT_TOP_K
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    # Loop control: DRY's multiplier under a grammar and for free text (0: off).
    loop_control: float = 0.0
    text_loop_control: float = 0.0
    # Tool choice AUTO: a call when log P(call opener) + this > 0 (decide.py); None: the
    # model's own choice as it writes.
    tool_call_bias: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    default_max_tokens: int | None = None  # the model's cap when the request names none
    stop: tuple[str, ...] = ()
    n: int = 1


@dataclass(frozen=True, slots=True)
class Output:
    """What the model may write, and the grammars that hold it to that.

    - ``grammar`` (Lark, llguidance) constrains the answer from its first token; None means
      free text.
    - ``open_grammar``: AUTO tool choice over free text. The model writes freely; if it
      writes ``<tool_call>``, the rest of its answer is held to this grammar.
    """

    grammar: str | None = None
    open_grammar: str | None = None
    json: bool = False  # a structured (JSON) answer
    answer_schema: dict[str, Any] | None = None  # what the JSON answer follows (json_schema)
    tools: calls.Toolset | None = None
    parallel: bool = True
    # The last turn holds function results: AUTO answers in text (decide.py).
    after_results: bool = False

    @property
    def free_text(self) -> bool:
        return self.grammar is None


def output(request: g.GenerateContentRequest, model: str, *, parallel_tool_calls: bool = True) -> Output:
    """What the model may write, every schema checked (400 before anything runs). A request
    that needs more than a local model can do is refused here, before anything else."""
    capabilities.check(request, CAPABILITIES, model)
    config = request.generation_config or g.GenerationConfig()
    answer = _answer_schema(config, model)
    shown = answer if answer is not None and answer is not schemas.ANY_OBJECT else None
    toolset = calls.toolset(request)
    if toolset is not None and toolset.mode == "ANY" and len(toolset.allowed) == 1:
        # A function named in tool_choice is called once, as OpenAI's models do.
        parallel_tool_calls = False
    if toolset is None or not toolset.may_call:
        if answer is None:
            return Output(tools=toolset)
        grammar = f"start: answer\nanswer: {schemas.json_rule(answer)}"
        schemas.check_grammar(grammar)
        return Output(grammar=grammar, json=True, answer_schema=shown, tools=toolset)
    if toolset.mode == "ANY":
        grammar = calls.grammar(toolset, parallel=parallel_tool_calls, opened=False, answer=None)
        schemas.check_grammar(grammar)
        return Output(grammar=grammar, tools=toolset, parallel=parallel_tool_calls)
    if answer is not None:  # AUTO: a structured answer or calls, told apart by the first character
        grammar = calls.grammar(toolset, parallel=parallel_tool_calls, opened=False, answer=answer)
        schemas.check_grammar(grammar)
        return Output(grammar=grammar, json=True, answer_schema=shown, tools=toolset, parallel=parallel_tool_calls)
    open_grammar = calls.grammar(toolset, parallel=parallel_tool_calls, opened=True, answer=None)
    schemas.check_grammar(open_grammar)
    last = request.contents[-1].parts if request.contents else []
    return Output(
        open_grammar=open_grammar,
        tools=toolset,
        parallel=parallel_tool_calls,
        after_results=any(p.function_response is not None for p in last),
    )


def _answer_schema(config: g.GenerationConfig, model: str) -> dict[str, Any] | None:
    mime = config.response_mime_type
    if mime in (None, "", "text/plain"):
        if config.response_json_schema is not None or config.response_schema is not None:
            log.debug("local model %s: a response schema without a JSON MIME type is ignored", model)
        return None
    if mime != "application/json":
        raise Unsupported(
            f"local model {model!r} can answer in text/plain or application/json, not {mime}", param="response_format"
        )
    param = "response_format.json_schema.schema"
    if config.response_json_schema is not None:
        return schemas.validate(config.response_json_schema, param, "the response_format schema")
    if config.response_schema is not None:
        return schemas.validate(
            schemas.from_openapi(config.response_schema, param), param, "the response_format schema"
        )
    return schemas.ANY_OBJECT


def messages(request: g.GenerateContentRequest, model: str, out: Output, *, template_tools: bool) -> list[Message]:
    """``systemInstruction`` and ``contents`` as chat-template messages.

    ``template_tools``: the model's chat template renders tools and calls itself (Hermes
    format); else they are rendered here (see ``tools``)."""
    for name in ("safety_settings", "labels"):
        if getattr(request, name):
            log.debug("local model %s ignores %s", model, name)
    result: list[Message] = []
    system = ""
    if request.system_instruction and request.system_instruction.parts:
        system = _text(request.system_instruction.parts, model, "systemInstruction")
    extra = []
    if out.tools is not None and out.tools.may_call and not template_tools:
        extra.append(calls.system_text(out.tools, parallel=out.parallel))
    if out.answer_schema is not None:
        # The grammar holds the answer to the schema; a small model fills it far better
        # when it can read what the fields mean.
        extra.append(
            "Answer with JSON that follows this JSON Schema:\n" + json.dumps(out.answer_schema, ensure_ascii=False)
        )
    system = "\n\n".join(t for t in (system, *extra) if t)
    if system:
        result.append({"role": "system", "content": system})
    for i, content in enumerate(request.contents):
        where = f"contents[{i}]"
        if content.role == "model":
            result.append(_model_turn(content.parts, model, where, template_tools))
        else:
            result.extend(_user_turn(content.parts, model, where, template_tools))
    return result


def _model_turn(parts: list[g.Part], model: str, where: str, template_tools: bool) -> Message:
    texts = [p for p in parts if p.function_call is None]
    called = [p.function_call for p in parts if p.function_call is not None]
    text = _text(texts, model, where)
    if template_tools:
        message: Message = {"role": "assistant", "content": text}
        if called:
            message["tool_calls"] = [calls.template_call(c) for c in called]
        return message
    blocks = [text] if text else []
    blocks += [calls.call_text(c) for c in called]
    return {"role": "assistant", "content": "\n".join(blocks)}


def _user_turn(parts: list[g.Part], model: str, where: str, template_tools: bool) -> list[Message]:
    results = [p.function_response for p in parts if p.function_response is not None]
    text = _text([p for p in parts if p.function_response is None], model, where)
    if template_tools:
        out: list[Message] = [{"role": "tool", "content": _result_content(r), "name": r.name} for r in results]
        if text or not results:
            out.append({"role": "user", "content": text})
        return out
    blocks = [calls.response_text(r) for r in results]
    if text or not results:
        blocks.append(text)
    return [{"role": "user", "content": "\n".join(blocks)}]


def _result_content(response: g.FunctionResponse) -> str:
    return json.dumps(response.response, ensure_ascii=False)


def sampling(
    request: g.GenerateContentRequest,
    *,
    default_max_tokens: int | None = None,
    loop_control: float = 0.0,
    text_loop_control: float = 0.0,
    tool_call_bias: float | None = None,
) -> Sampling:
    """The request's sampling options, with the model's defaults for what it leaves out."""
    config = request.generation_config or g.GenerationConfig()
    return Sampling(
        temperature=DEFAULT_TEMPERATURE if config.temperature is None else config.temperature,
        top_p=DEFAULT_TOP_P if config.top_p is None else config.top_p,
        # Gemini's topK is a float on the wire; llama.cpp counts whole tokens.
        top_k=DEFAULT_TOP_K if not config.top_k else max(1, int(config.top_k)),
        frequency_penalty=config.frequency_penalty or 0.0,
        presence_penalty=config.presence_penalty or 0.0,
        seed=config.seed,
        max_tokens=config.max_output_tokens,
        default_max_tokens=default_max_tokens,
        loop_control=loop_control,
        text_loop_control=text_loop_control,
        tool_call_bias=tool_call_bias,
        stop=tuple(config.stop_sequences or ()),
        n=config.candidate_count or 1,
    )


def _text(parts: list[g.Part], model: str, where: str) -> str:
    texts = []
    for part in parts:
        if part.text is not None:
            if not part.thought:
                texts.append(part.text)
        else:  # media was refused by capabilities.check; this is something stranger
            raise Unsupported(f"model {model!r} cannot take this kind of content ({where})", param="messages")
    # Messages merged into one turn were separate paragraphs.
    return "\n\n".join(texts)
