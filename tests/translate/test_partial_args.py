from __future__ import annotations

import json

import pytest

from chatgate.errors import UpstreamError
from chatgate.protocols.gemini import PartialArg as P
from chatgate.translate.partial_args import ArgsWriter, parse_path


def test_spec_example_fragments() -> None:
    w = ArgsWriter()
    fragments = [
        w.feed([P(json_path="$.location", string_value="Boston, MA", will_continue=True)]),
        w.feed([P(json_path="$.location", string_value="")]),
        w.feed([P(json_path="$.unit", string_value="celsius")]),
        w.close(),
    ]
    assert fragments == ['{"location":"Boston, MA', '"', ',"unit":"celsius"', "}"]
    assert json.loads(w.text) == {"location": "Boston, MA", "unit": "celsius"}


def test_newlines_in_strings_are_escaped() -> None:
    w = ArgsWriter()
    w.feed([P(json_path="$.text", string_value="line 1\nline", will_continue=True)])
    w.feed([P(json_path="$.text", string_value=' "2"')])
    w.close()
    assert json.loads(w.text) == {"text": 'line 1\nline "2"'}


def test_nested_objects_arrays_and_scalars() -> None:
    w = ArgsWriter()
    w.feed(
        [
            P(json_path="$.stops[0].city", string_value="A"),
            P(json_path="$.stops[0].n", number_value=2.0),
            P(json_path="$.stops[1].city", string_value="B"),
            P(json_path="$.ok", bool_value=True),
            P(json_path="$.none", null_value="NULL_VALUE"),
            P(json_path="$.pi", number_value=3.5),
        ]
    )
    w.close()
    assert json.loads(w.text) == {"stops": [{"city": "A", "n": 2}, {"city": "B"}], "ok": True, "none": None, "pi": 3.5}


def test_no_arguments_close_as_empty_object() -> None:
    w = ArgsWriter()
    assert w.close() == "{}"


def test_bracket_paths() -> None:
    assert parse_path("$['a b'].c[2]") == ["a b", "c", 2]
    with pytest.raises(UpstreamError):
        parse_path("location")


def test_empty_containers_come_from_the_closing_args() -> None:
    import json

    from chatgate.protocols import gemini as g
    from chatgate.translate.partial_args import ArgsWriter

    writer = ArgsWriter()
    text = writer.feed([g.PartialArg(json_path="$.n", number_value=1)])
    text += writer.close({"n": 1, "tags": [], "meta": {}})
    assert json.loads(text) == {"n": 1, "tags": [], "meta": {}}


def test_closing_args_inside_an_open_nested_object() -> None:
    import json

    from chatgate.protocols import gemini as g
    from chatgate.translate.partial_args import ArgsWriter

    writer = ArgsWriter()
    text = writer.feed([g.PartialArg(json_path="$.a.b", string_value="x")])
    text += writer.close({"a": {"b": "x"}, "c": []})
    assert json.loads(text) == {"a": {"b": "x"}, "c": []}
