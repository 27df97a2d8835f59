"""``check_nesting``: a 400 exactly when arrays and objects nest deeper than the limit, whatever
brackets, quotes and backslashes the strings hold, and across the scan's chunks."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from chatgate.errors import InvalidRequest
from chatgate.front import body
from chatgate.front.body import MAX_NESTING, check_nesting

# Strings that fool a scan that does not read escapes as JSON does.
TRICKY = ["[", "]]]", "{[", '"', '\\"[', "\\", "\\\\", '\\\\"', '"]', "a\\\\\\", "\u005b", "é[{"]


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded value (0 for a scalar)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def nested(levels: int, leaf: Any, rng: random.Random) -> Any:
    value = leaf
    for _ in range(levels):
        key = rng.choice(TRICKY) + str(rng.random())
        value = {key: value, "s": rng.choice(TRICKY)} if rng.random() < 0.5 else [rng.choice(TRICKY), value]
    return value


def refused(raw: bytes) -> bool:
    try:
        check_nesting(raw)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.code == "nesting_too_deep"
        return True
    return False


@pytest.mark.parametrize("levels", [MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, MAX_NESTING + 40])
@pytest.mark.parametrize("seed", range(8))
def test_refused_exactly_past_the_limit(levels: int, seed: int) -> None:
    rng = random.Random(seed)
    # Beside the deep value, strings full of brackets: enough to pass the bracket-count shortcut.
    value = {"noise": ["[" * 300, "{" * 300, "\\" * 7 + '"'], "deep": nested(levels - 1, "x", rng)}
    raw = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
    assert depth(json.loads(raw)) == levels
    assert refused(raw) is (levels > MAX_NESTING)


def test_brackets_in_strings_never_count() -> None:
    raw = json.dumps({"a": ["[" * 5000, "{" * 5000, '\\"' + "[" * 5000]}).encode()
    assert not refused(raw)


def test_an_escaped_backslash_before_a_closing_quote_ends_the_string() -> None:
    # "a\\" is a whole string: the brackets after it are structure.
    raw = b'{"k": "a\\\\", "deep": ' + b"[" * (MAX_NESTING + 1) + b"]" * (MAX_NESTING + 1) + b"}"
    assert json.loads(raw)["k"] == "a\\"
    assert refused(raw)


def test_depth_is_carried_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(body, "_SCAN_CHUNK", 7)  # strings and runs of brackets cut everywhere
    rng = random.Random(1)
    for levels in (MAX_NESTING, MAX_NESTING + 1):
        raw = json.dumps({"s": "[" * 200 + '\\"{', "deep": nested(levels - 1, "x", rng)}).encode()
        assert refused(raw) is (levels > MAX_NESTING)
