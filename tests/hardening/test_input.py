"""Input that used to be a 500 (or a wrong 400): each is now the right 400 naming the field,
or accepted, and the server keeps answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gemini.fake import FakeGemini
from tests.hardening.conftest import GEMINI, JSON, OK, ROUTE, chat, error_of, gateway
from tests.live import LiveServer
from tests.upstream.servers import Upstream, openai_stub

OPENAPI = ROUTE.format("proj", "openapi")
DEEP = 50_000


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream(openai_stub) as up:
        yield up


@pytest.fixture(scope="module")
def server(
    fake_gemini: FakeGemini, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with gateway(
        tmp_path_factory.mktemp("state"),
        fake_gemini,
        endpoints={"relay": {"upstreams": [upstream.url], "model": "stub-model"}},
    ) as live:
        yield live


def post(server: LiveServer, body: Any, route: str = OPENAPI) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + route, content=content, headers=JSON, timeout=60)


def healthy(server: LiveServer, fake: FakeGemini) -> None:
    fake.reply(200, OK)
    response = post(server, chat())
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "hi"


@pytest.mark.parametrize("route", [OPENAPI, ROUTE.format("proj", "relay")])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_a_400(server: LiveServer, fake: FakeGemini, route: str, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    body = (
        b'{"model": "'
        + GEMINI.encode()
        + b'", "messages": [{"role": "user", "content": "hi"}], "x": '
        + opener * DEEP
        + b"1"
        + closer * DEEP
        + b"}"
    )
    error = error_of(post(server, body, route), 400)
    assert error["code"] == "nesting_too_deep"
    healthy(server, fake)


def test_deep_schema_in_a_tool_is_a_400(server: LiveServer, fake: FakeGemini) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(500):  # past the nesting limit, within what json.dumps here can write
        schema = {"type": "array", "items": schema}
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    error_of(post(server, chat(tools=tools)), 400)
    assert not fake.seen  # refused before anything reached Google
    healthy(server, fake)


def test_brackets_inside_strings_do_not_count(server: LiveServer, fake: FakeGemini) -> None:
    fake.reply(200, OK)
    text = "[" * 1000 + "{" * 1000
    response = post(server, {"model": GEMINI, "messages": [{"role": "user", "content": text}]})
    assert response.status_code == 200, response.text
    assert fake.seen[0].body["contents"][0]["parts"][0]["text"] == text


@pytest.mark.parametrize(
    "model", [GEMINI + "\n", GEMINI + "\r\n", "google/gemini\x00x", "google/gem ini", "google/gemini/x"]
)
def test_a_model_name_with_forbidden_characters_is_a_400(server: LiveServer, fake: FakeGemini, model: str) -> None:
    error = error_of(post(server, chat(model=model)), 400)
    assert error["param"] == "model"
    assert not fake.seen
    healthy(server, fake)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", 2**63),
        ("max_completion_tokens", 2**64 + 5),
        ("seed", 2**63),
        ("seed", -(2**63) - 1),
        ("max_tokens", 10**30),
    ],
)
def test_integers_beyond_int64_name_the_field(server: LiveServer, fake: FakeGemini, field: str, value: int) -> None:
    error = error_of(post(server, chat(**{field: value})), 400)
    assert error["param"] == field
    healthy(server, fake)


def test_int64_bounds_themselves_are_accepted(server: LiveServer, fake: FakeGemini) -> None:
    fake.reply(200, OK)
    response = post(server, chat(seed=-(2**63)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("role", ["user", "system", "developer"])
def test_an_empty_content_array_names_the_content(server: LiveServer, role: str) -> None:
    messages = [{"role": role, "content": []}, {"role": "user", "content": "hi"}]
    error = error_of(post(server, {"model": GEMINI, "messages": messages}), 400)
    assert error["param"] == "messages[0].content"


def test_an_empty_tool_message_content_names_it(server: LiveServer) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": []},
    ]
    error = error_of(post(server, {"model": GEMINI, "messages": messages}), 400)
    assert error["param"] == "messages[2].content"


NULLABLE = [
    "tool_choice",
    "tools",
    "functions",
    "function_call",
    "stop",
    "response_format",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "metadata",
    "modalities",
    "audio",
    "prediction",
    "reasoning_effort",
    "service_tier",
    "store",
    "stream",
    "parallel_tool_calls",
    "web_search_options",
    "extra_body",
    "google",
]


def test_null_for_every_optional_parameter_means_the_default(server: LiveServer, fake: FakeGemini) -> None:
    fake.reply(200, OK)
    messages = [
        {"role": "user", "content": "hi", "name": None},
        {
            "role": "assistant",
            "content": "hello",
            "tool_calls": None,
            "function_call": None,
            "refusal": None,
            "audio": None,
            "name": None,
        },
        {"role": "user", "content": "again"},
    ]
    response = post(server, {"model": GEMINI, "messages": messages, **dict.fromkeys(NULLABLE)})
    assert response.status_code == 200, response.text
    sent = fake.seen[0].body
    assert "tools" not in sent and "toolConfig" not in sent  # null tool_choice: the default, not "none"
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]


def test_a_recursion_error_that_escapes_is_a_400_not_a_500() -> None:
    """The safety net behind the nesting limit: a walk that still runs out of stack."""
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from chatgate.front import render

    def deep(request: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    app = Starlette(routes=[Route("/deep", deep)], exception_handlers={Exception: render.on_unexpected})
    response = TestClient(app, raise_server_exceptions=False).get("/deep")
    assert error_of(response, 400)["code"] == "nesting_too_deep"
