"""``extra_body.chatgate``: chatgate's own per-request knobs, decoded into ``Tuning``; a bad
value is a 400 naming its JSON path."""

from __future__ import annotations

from typing import Any

import pytest

from chatgate.errors import InvalidRequest
from chatgate.protocols.tuning import NO_TUNING, Tuning
from tests.translate.util import rendering, wire


def test_no_extension_is_no_tuning() -> None:
    assert rendering().tuning is NO_TUNING


def test_extra_body_chatgate_is_read() -> None:
    found = rendering(extra_body={"chatgate": {"loop_control": 1.5, "text_loop_control": 0, "tool_call_bias": -2}})
    assert found.tuning == Tuning(loop_control=1.5, text_loop_control=0.0, tool_call_bias=-2.0)


def test_top_level_chatgate_is_read_and_extra_body_wins() -> None:
    """The OpenAI SDK's ``extra_body={"chatgate": ...}`` arrives at the top level of the body."""
    assert rendering(chatgate={"loop_control": 2}).tuning == Tuning(loop_control=2.0)
    both = rendering(chatgate={"loop_control": 2, "tool_call_bias": 1}, extra_body={"chatgate": {"loop_control": 0}})
    assert both.tuning == Tuning(loop_control=0.0, tool_call_bias=1.0)


def test_null_and_unknown_keys_are_ignored() -> None:
    assert rendering(chatgate=None).tuning is NO_TUNING
    assert rendering(extra_body={"chatgate": {"loop_control": None, "colour": "red"}}).tuning is NO_TUNING


def test_the_knobs_never_reach_gemini() -> None:
    body = wire(extra_body={"chatgate": {"loop_control": 1}}, chatgate={"tool_call_bias": 3})
    assert "chatgate" not in str(body)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"extra_body": {"chatgate": {"loop_control": -0.1}}}, "extra_body.chatgate.loop_control"),
        ({"extra_body": {"chatgate": {"loop_control": 11}}}, "extra_body.chatgate.loop_control"),
        ({"extra_body": {"chatgate": {"loop_control": "strong"}}}, "extra_body.chatgate.loop_control"),
        ({"extra_body": {"chatgate": {"loop_control": True}}}, "extra_body.chatgate.loop_control"),
        ({"chatgate": {"text_loop_control": [1]}}, "chatgate.text_loop_control"),
        ({"chatgate": {"tool_call_bias": 1000}}, "chatgate.tool_call_bias"),
        ({"chatgate": {"tool_call_bias": "more"}}, "chatgate.tool_call_bias"),
        ({"extra_body": {"chatgate": "on"}}, "extra_body.chatgate"),
        ({"chatgate": [1]}, "chatgate"),
    ],
)
def test_a_bad_value_names_its_path(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        rendering(**fields)
    assert caught.value.param == param
