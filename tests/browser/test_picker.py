"""The model picker and the google-genai snippet, in a real browser against a real chatgate
(a scripted local engine, model-free) with Gemini configured against the fake Google.

The picker is filled from the server's own listings: the openapi listing (local models, and
Gemini's ``google/*`` once the server lists them), the project's endpoints (``GET
.../locations/{l}/endpoints``) and each endpoint's ``.../models``. The genai snippet is run
with the real ``google-genai`` SDK against the fake Google, and what it sends must be what
chatgate itself sends Gemini for the same OpenAI request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from chatgate.protocols import openai as o
from chatgate.translate.request import to_gemini
from tests.browser.helpers import open_page, token_shell, wait_state
from tests.conftest import make_settings
from tests.front.fake import FakeEngine
from tests.gemini import discovery
from tests.gemini.fake import FakeGemini
from tests.live import LiveServer

# A local model named google/... must stay with the local ones, not Gemini's.
LOCAL = ("fake/model-a", "google/gemma-fake")
ENDPOINTS = {
    "fake-ep": {"model": LOCAL[0]},
    "local": {"model": LOCAL[0]},
    "team-b": {"model": LOCAL[0], "projects": ["other"]},  # listed for project `other` only
}
TOKEN = "a-chatgate-token"
GEMINI_REPLY = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
}


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, google: FakeGemini) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("state"),
        auth={"enabled": False},
        endpoints=ENDPOINTS,
        gemini={"project": "proj", "access_token": "tok", "base_url": google.url, "retry_backoff": 0},
    )
    with LiveServer(settings, local=FakeEngine(models=LOCAL)) as live:
        yield live


def groups(page: Any) -> list[tuple[str, list[str]]]:
    """The picker's groups in order, each with its options' labels."""
    found: list[tuple[str, list[str]]] = page.evaluate(
        "() => [...document.querySelectorAll('#model optgroup')]"
        ".map((g) => [g.label, [...g.children].map((o) => o.textContent)])"
    )
    return [(label, options) for label, options in found]


def gemini_models(server: LiveServer) -> list[str]:
    """The ``google/*`` models the server lists that are not local: Gemini's."""
    listed = httpx.get(server.url + "/v1/models")
    assert listed.status_code == 200, listed.text
    return [m["id"] for m in listed.json()["data"] if m["id"].startswith("google/") and m["id"] not in LOCAL]


def test_the_picker_groups_local_models_gemini_and_the_projects_endpoints(page: Any, server: LiveServer) -> None:
    open_page(page, server.url)
    gemini = gemini_models(server)
    expected = [
        ("Local", list(LOCAL)),
        *([("Gemini", gemini)] if gemini else []),
        ("Endpoints", ["fake-ep: fake/model-a", "local: fake/model-a"]),
    ]
    assert groups(page) == expected
    assert page.locator("#error").is_hidden()
    assert page.locator('#model option[value="local:fake/model-a"]').count() == 1

    # Another project: its own endpoints, the one restricted to it among them.
    page.fill("#project", "other")
    page.locator("#project").dispatch_event("change")
    page.locator('#model option[value="team-b:fake/model-a"]').wait_for(state="attached")
    wait_state(page, "ready")
    endpoints = dict(groups(page))["Endpoints"]
    assert endpoints == ["fake-ep: fake/model-a", "local: fake/model-a", "team-b: fake/model-a"]
    page.evaluate("() => { document.getElementById('model').size = 9; }")  # the groups, in the screenshot


def test_gemini_models_listed_by_the_server_get_their_own_group(page: Any, server: LiveServer) -> None:
    gemini = gemini_models(server)
    if not gemini:
        pytest.skip("this server's openapi listing names no google/* model yet, though Gemini is configured")
    open_page(page, server.url)
    assert dict(groups(page))["Gemini"] == gemini
    assert [label for label, _ in groups(page)] == ["Local", "Gemini", "Endpoints"]


def test_the_genai_tab_is_offered_for_openapi_models_only(page: Any, server: LiveServer) -> None:
    open_page(page, server.url)
    page.fill("#prompt", "Hi")
    page.click("#code summary")
    page.select_option("#model", "openapi:fake/model-a")
    page.click("[data-lang=genai]")
    assert "genai.Client(" in page.locator("#snippet").inner_text()
    # Gemini's own API has no self-deployed endpoints: no genai code for one.
    page.select_option("#model", "fake-ep:fake/model-a")
    assert page.locator("[data-lang=genai]").is_hidden()
    assert page.locator('[data-lang=curl][aria-selected="true"]').count() == 1
    assert "/endpoints/fake-ep/chat/completions" in page.locator("#snippet").inner_text()
    page.select_option("#model", "openapi:google/gemma-fake")
    assert page.locator("[data-lang=genai]").is_visible()


def run_genai(code: str, server: LiveServer, google: FakeGemini, tmp_path: Path) -> Any:
    """Run the snippet with its base URL pointed at the fake Google; what the SDK sent."""
    pytest.importorskip("google.genai", reason="google-genai is not installed (pip install -e '.[test]')")
    base = f"base_url={json.dumps(server.url)}"
    assert code.count(base) == 1, code
    google.reset()
    google.reply(body=GEMINI_REPLY)
    done = subprocess.run(
        [sys.executable, "-c", code.replace(base, f"base_url={json.dumps(google.url)}")],
        env=token_shell(tmp_path, TOKEN),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "get_weather" in done.stdout and "Oslo" in done.stdout  # the reply, parsed by the SDK
    [seen] = google.seen
    assert seen.method == "POST" and seen.headers["authorization"] == f"Bearer {TOKEN}"
    seen.body = proto_names(seen.body)
    discovery.validate(seen.body, discovery.request_schema("v1beta1"), "v1beta1")
    return seen


def proto_names(body: dict[str, Any]) -> dict[str, Any]:
    """The SDK writes a function declaration's own fields in snake_case (it sends
    ``parameters_json_schema``); protobuf's JSON parser, and so Google, takes a field's proto
    name as well as its camelCase one. The camelCase name here, the schema inside untouched."""
    for tool in body.get("tools", []):
        for declaration in tool.get("functionDeclarations", []):
            for key in [k for k in declaration if "_" in k]:
                head, *rest = key.split("_")
                declaration[head + "".join(word.title() for word in rest)] = declaration.pop(key)
    return body


def chatgate_sends(body: dict[str, Any]) -> dict[str, Any]:
    """What chatgate sends Gemini for this OpenAI request (its own translation)."""
    request = msgspec.convert(body, o.ChatCompletionRequest)
    translated, _ = to_gemini(request, body["model"])
    sent: dict[str, Any] = json.loads(msgspec.json.encode(translated))
    return sent


def without_system_role(body: dict[str, Any]) -> dict[str, Any]:
    """The SDK gives the system instruction the role ``user``; Gemini ignores it there."""
    system = body.get("systemInstruction")
    if system is None:
        return body
    return {**body, "systemInstruction": {k: v for k, v in system.items() if k != "role"}}


def test_the_genai_snippet_sends_what_chatgate_sends_gemini(
    page: Any, server: LiveServer, google: FakeGemini, tmp_path: Path
) -> None:
    """The page's settings (system prompt, temperature, max tokens, seed, stops, JSON schema,
    tools, tool_choice) as google-genai code, run: the same request on Gemini's own API."""
    open_page(page, server.url)
    page.select_option("#model", "openapi:fake/model-a")
    page.fill("#system", "You answer in one short sentence.")
    page.fill("#temperature", "0.3")
    page.fill("#max-tokens", "40")
    page.fill("#seed", "11")
    page.fill("#stop", "\\n\\n\nEND")
    page.select_option("#format", "json_schema")
    page.fill("#schema", json.dumps({"$schema": "x", "type": "object", "properties": {"city": {"type": "string"}}}))
    page.click("#tools-example")
    page.select_option("#tool-choice", "required")
    page.fill("#prompt", "Weather in Oslo?")
    page.click("#code summary")
    # The snippet is written on the details' toggle event, which the browser fires after the click.
    page.locator("#snippet:has-text('EOF')").wait_for()
    openai_body = json.loads(page.locator("#snippet").inner_text().split("<<'EOF'\n", 1)[1].rsplit("\nEOF", 1)[0])
    page.click("[data-lang=genai]")
    code = page.locator("#snippet").inner_text()

    path = "/v1beta1/projects/default/locations/us-central1/publishers/fake/models/model-a:generateContent"
    assert f"# POST {server.url}{path}" in code
    assert 'model="fake/model-a"' in code and "vertexai=True" in code
    assert TOKEN not in code and "chatgate" in code  # the code mints its own token
    seen = run_genai(code, server, google, tmp_path)
    assert seen.path == path
    assert without_system_role(seen.body) == chatgate_sends(openai_body)


def test_a_conversation_with_tool_results_maps_as_chatgate_maps_it(
    page: Any, server: LiveServer, google: FakeGemini, tmp_path: Path
) -> None:
    """Turns, tool calls and their results (a JSON object as it is, text as ``output``),
    and a bare model name (Google's publisher), through the page's own module."""
    open_page(page, server.url)
    call = "function-call-2b9c0f0e-3d6a-4a39-9a53-7d0f4e8b1c2d"  # the shape chatgate makes up
    other = "function-call-7e1f4c55-0c1b-4b7e-8f25-1c9d3e2a6b40"
    body = {
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo and Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {"id": other, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": call, "content": '{"celsius": 18}'},
            {"role": "tool", "tool_call_id": other, "content": 'it\'s "raining"'},
            {"role": "user", "content": "And tomorrow?"},
            {"role": "user", "content": "In short."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
            }
        ],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }
    where = {"origin": server.url, "project": "p-1", "location": "europe-west4"}
    code = page.evaluate("async (args) => (await import('./request.js')).genai(...args)", [where, body])
    path = "/v1beta1/projects/p-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    assert f"# POST {server.url}{path}" in code
    seen = run_genai(code, server, google, tmp_path)
    assert seen.path == path
    assert without_system_role(seen.body) == chatgate_sends(body)
