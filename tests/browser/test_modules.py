"""The page's own modules, run in the browser on the served page (model-free): the schema
check it shows under JSON answers, and the code it offers to copy."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

import pytest

from chatgate.engines.local.engine import LocalEngine
from tests.browser.helpers import open_page
from tests.conftest import make_settings
from tests.live import LiveServer

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "pattern": "^[A-Z]"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 2},
        "kind": {"enum": ["a", "b"]},
        "note": {"type": ["string", "null"]},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
    "$defs": {"tag": {"type": "string", "maxLength": 3}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("state"), auth={"enabled": False})
    with LiveServer(settings, local=LocalEngine([])) as live:
        yield live


def run(page: Any, module: str, function: str, *args: Any) -> Any:
    """Call an exported function of one of the page's modules, as the page imports it."""
    return page.evaluate(f"async (args) => (await import('./{module}')).{function}(...args)", list(args))


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ({"name": "Ada", "age": 36, "tags": ["x", "yz"], "kind": "a", "note": None}, []),
        ({"name": "Ada"}, ["$: missing age"]),
        ({"name": "ada", "age": 36.5}, ["$.name: does not match ^[A-Z]", "$.age: expected integer, got number"]),
        ({"name": "Ada", "age": 200, "kind": "c"}, ["$.age: above 150", "$.kind: not one of the enum"]),
        (
            {"name": "Ada", "age": 1, "tags": ["long", "a", "b"]},
            ["$.tags: more than 2 items", "$.tags[0]: longer than 3"],
        ),
        ({"name": "Ada", "age": 1, "extra": True}, ["$.extra: not allowed"]),
        ([], ["$: expected object, got array"]),
    ],
)
def test_the_schema_check_finds_what_does_not_match(
    page: Any, server: LiveServer, value: Any, errors: list[str]
) -> None:
    open_page(page, server.url)
    result = run(page, "schema.js", "validate", value, SCHEMA)
    assert sorted(result["errors"]) == sorted(errors)
    assert result["unchecked"] == []


def test_the_schema_check_names_keywords_it_does_not_check(page: Any, server: LiveServer) -> None:
    open_page(page, server.url)
    result = run(page, "schema.js", "validate", [1, 1], {"type": "array", "uniqueItems": True})
    assert result == {"errors": [], "unchecked": ["uniqueItems"]}


def test_the_python_snippet_is_valid_python_with_the_request_as_arguments(page: Any, server: LiveServer) -> None:
    open_page(page, server.url)
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": 'it\'s "quoted"\n\u00e9'}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True},
        },
        "tools": [],
        "tool_choice": "none",
        "stop": ["\n\n"],
        "temperature": 0.5,
        "extra": None,
    }
    code = run(page, "request.js", "python", "http://h/v1/projects/p/locations/l/endpoints/openapi", body)
    tree = ast.parse(code)
    create = next(
        node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "create"
    )
    assert {kw.arg: ast.literal_eval(kw.value) for kw in create.keywords} == body
    assert 'base_url="http://h/v1/projects/p/locations/l/endpoints/openapi"' in code


def test_the_curl_snippet_sends_the_body_unquoted_by_the_shell(page: Any, server: LiveServer) -> None:
    open_page(page, server.url)
    body = {"model": "m", "messages": [{"role": "user", "content": "it's $HOME `x` \\ EOF"}]}
    code = run(page, "request.js", "curl", "http://h/base", body)
    first, *rest = code.split("\n")
    assert first == 'curl -X POST "http://h/base/chat/completions" \\'
    heredoc = "\n".join(rest[rest.index("  -d @- <<'EOF'") + 1 : -1])
    assert json.loads(heredoc) == body and rest[-1] == "EOF"


def test_the_picker_adds_models_by_name_and_refuses_unknown_endpoints(page: Any, server: LiveServer) -> None:
    open_page(page, server.url)
    page.fill("#target-name", "nowhere")
    page.click("#add-target button")
    page.locator("#error:not([hidden])").wait_for()
    assert page.locator("#error-title").inner_text().startswith("HTTP 404: endpoint 'nowhere' does not exist")
    assert json.loads(page.locator("#error-body").inner_text())["error"]["code"] == "endpoint_not_found"
    assert page.evaluate("sessionStorage.getItem('chatgate.targets')") is None

    page.fill("#target-name", "google/gemini-2.5-flash")
    page.click("#add-target button")
    page.locator("#target-name:placeholder-shown").wait_for(state="attached")  # added, and picked
    assert page.locator("#error").is_hidden()
    assert page.locator("#model").input_value() == "openapi:google/gemini-2.5-flash"
    page.reload()  # kept for the tab
    page.locator('#model option[value="openapi:google/gemini-2.5-flash"]').wait_for(state="attached")


def test_the_request_body_is_built_from_the_settings(page: Any, server: LiveServer) -> None:
    open_page(page, server.url)
    settings = {
        "model": "m",
        "system": "Be brief.",
        "temperature": "0.5",
        "maxTokens": "",
        "seed": "3",
        "stop": "\\n\\n\nEND\n\nback\\\\slash\\t",
        "format": "json_schema",
        "schema": {"type": "object"},
        "tools": None,
        "toolChoice": "auto",
    }
    body = run(page, "request.js", "buildBody", settings, [{"role": "user", "content": "hi"}])
    assert body == {
        "model": "m",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "temperature": 0.5,
        "seed": 3,
        "stop": ["\n\n", "END", "back\\slash\t"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
    }
