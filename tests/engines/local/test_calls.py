"""Reading calls and streamed arguments back from the model's text; rendering tools into
chat templates. No model needed."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from chatgate.engines.local import prompt
from chatgate.engines.local.partial import ArgsReader, json_path
from chatgate.engines.local.tools import CallArgs, CallEnd, CallReader, CallStart
from chatgate.protocols import gemini as g

VALUES: list[Any] = [
    {"city": "Paris", "days": 3, "ok": True, "none": None, "ratio": -0.25, "big": 1e21},
    {"text": 'quote " backslash \\ newline \n tab \t unicode é 😀 \u2028', "k y": "spaced key", "a.b": 1},
    {"nested": {"list": [1, "two", {"three": [3.5, False]}], "deep": {"er": {"est": "x"}}}},
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("indent", [None, 2])
def test_args_reader_reports_every_scalar_at_its_path(value: dict[str, Any], indent: int | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=random.random() < 0.5)
    reader = ArgsReader()
    found: dict[str, Any] = {}
    rng = random.Random(1)
    position = 0
    while position < len(text):
        size = rng.randint(1, 4)
        for arg in reader.feed(text[position : position + size]):
            if arg.string_value is not None:
                found[arg.json_path] = found.get(arg.json_path, "") + arg.string_value
            else:
                found[arg.json_path] = (
                    arg.number_value
                    if arg.number_value is not None
                    else arg.bool_value
                    if arg.bool_value is not None
                    else None
                )
        position += size
    assert reader.done
    assert found == dict(_leaves(value, []))


def _leaves(value: Any, path: list[str | int]) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, path + [k])]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, path + [i])]
    return [(json_path(path), value)]


def test_json_paths() -> None:
    assert json_path(["a", 0, "b c", "x.y", "it's"]) == "$.a[0]['b c']['x.y'][\"it's\"]"


def test_strings_stream_in_pieces() -> None:
    reader = ArgsReader()
    pieces = [reader.feed(t) for t in ['{"city": "Par', 'is", "n"', ": 12", "}"]]
    assert pieces[0] == [g.PartialArg(json_path="$.city", string_value="Par", will_continue=True)]
    assert pieces[1] == [g.PartialArg(json_path="$.city", string_value="is", will_continue=False)]
    assert pieces[2] == []  # a number is complete only once something follows it
    assert pieces[3] == [g.PartialArg(json_path="$.n", number_value=12.0)]
    assert reader.done


def test_call_reader_turns_text_into_calls() -> None:
    reader = CallReader()
    text = (
        '<tool_call>\n{"name": "a", "arguments": {"x": [1, 2]}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>'
    )
    events = [e for i in range(0, len(text), 3) for e in reader.feed(text[i : i + 3])] + reader.finish()
    starts = [e for e in events if isinstance(e, CallStart)]
    ends = [e for e in events if isinstance(e, CallEnd)]
    assert [s.name for s in starts] == ["a", "b"]
    assert [e.args for e in ends] == [{"x": [1, 2]}, {}]
    assert [e.id for e in ends] == [s.id for s in starts] and starts[0].id != starts[1].id
    assert any(isinstance(e, CallArgs) for e in events)


def test_a_call_cut_short_ends_without_arguments() -> None:
    reader = CallReader()
    events = reader.feed('<tool_call>\n{"name": "a", "arguments": {"x": "unfini')
    assert isinstance(events[0], CallStart)
    assert reader.finish() == [CallEnd(events[0].id, None)]


HERMES_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n# Tools\n<tools>{% for t in tools %}\n{{ t | tojson }}{% endfor %}\n</tools>"
    "<|im_end|>\n{%- endif %}"
    "{%- for m in messages %}{%- if m.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ m.content }}\n</tool_response>"
    "<|im_end|>\n{%- else %}<|im_start|>{{ m.role }}\n{{ m.content }}{%- for c in m.tool_calls or [] %}\n<tool_call>\n"
    '{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}\n</tool_call>{%- endfor %}'
    "<|im_end|>\n{%- endif %}{%- endfor %}<|im_start|>assistant\n"
)


def test_a_hermes_template_renders_tools_and_calls_itself() -> None:
    contents = [
        g.Content(role="user", parts=[g.Part(text="weather?")]),
        g.Content(role="model", parts=[g.Part(function_call=g.FunctionCall(id="c1", name="w", args={"city": "Oslo"}))]),
        g.Content(
            role="user", parts=[g.Part(function_response=g.FunctionResponse(id="c1", name="w", response={"t": 3}))]
        ),
    ]
    request = g.GenerateContentRequest(
        contents=contents,
        tools=[g.Tool(function_declarations=[g.FunctionDeclaration(name="w", description="Weather")])],
    )
    out = prompt.output(request, "m")
    messages = prompt.messages(request, "m", out, template_tools=True)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert "<tool_call>" not in messages[1]["content"]  # the template writes it
    formatter = Jinja2ChatFormatter(template=HERMES_TEMPLATE, eos_token="", bos_token="")
    from chatgate.engines.local.tools import template_tools

    rendered = formatter(messages=messages, tools=template_tools(out.tools)).prompt  # type: ignore[arg-type]
    assert '"name": "w"' in rendered and '"description": "Weather"' in rendered
    assert '<tool_call>\n{"name": "w", "arguments": {"city": "Oslo"}}\n</tool_call>' in rendered
    assert '<tool_response>\n{"t": 3}\n</tool_response>' in rendered
