"""Malformed requests: each gets the right 4xx, an OpenAI-style error naming the field, and
the server keeps answering good requests."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MODEL
from tests.live import LiveServer

pytestmark = pytest.mark.model

M = [{"role": "user", "content": "hi"}]


def ok(**fields: object) -> dict[str, object]:
    return {"model": MODEL, "messages": M, **fields}


# (name, raw body or JSON value, status, param)
CASES: list[tuple[str, object, int, str | None]] = [
    ("not json", b"{nope", 400, None),
    ("empty body", b"", 400, None),
    ("json array", [1, 2], 400, None),
    ("json string", "hello", 400, None),
    ("missing messages", {"model": MODEL}, 400, "messages"),
    ("empty messages", {"model": MODEL, "messages": []}, 400, "messages"),
    ("messages not a list", {"model": MODEL, "messages": "hi"}, 400, "messages"),
    ("message not an object", {"model": MODEL, "messages": ["hi"]}, 400, "messages[0]"),
    ("unknown role", {"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    ("missing role", {"model": MODEL, "messages": [{"content": "x"}]}, 400, "messages[0].role"),
    ("missing content", {"model": MODEL, "messages": [{"role": "user"}]}, 400, "messages[0].content"),
    ("content a number", {"model": MODEL, "messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    ("third message bad", {"model": MODEL, "messages": [*M, {"role": "assistant", "content": "a"}, {"role": "user", "content": {}}]},
     400, "messages[2].content"),
    ("part without type", {"model": MODEL, "messages": [{"role": "user", "content": [{"text": "x"}]}]}, 400,
     "messages[0].content[0].type"),
    ("unknown part type", {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}, 400,
     "messages[0].content[0].type"),
    ("text part text not string", {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     400, "messages[0].content[0].text"),
    ("tool message without id", {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}, 400,
     "messages[0].tool_call_id"),
    ("only a system message", {"model": MODEL, "messages": [{"role": "system", "content": "x"}]}, 400, "messages"),
    ("model not a string", {"model": 42, "messages": M}, 400, "model"),
    ("missing model on openapi route", {"messages": M}, 400, "model"),
    ("unknown model", {"model": "nope", "messages": M}, 404, "model"),
    ("temperature too high", ok(temperature=2.5), 400, "temperature"),
    ("temperature negative", ok(temperature=-0.1), 400, "temperature"),
    ("temperature a string", ok(temperature="hot"), 400, "temperature"),
    ("top_p above 1", ok(top_p=1.5), 400, "top_p"),
    ("frequency_penalty below -2", ok(frequency_penalty=-3), 400, "frequency_penalty"),
    ("presence_penalty above 2", ok(presence_penalty=2.1), 400, "presence_penalty"),
    ("n zero", ok(n=0), 400, "n"),
    ("n a float", ok(n=1.5), 400, "n"),
    ("max_tokens zero", ok(max_tokens=0), 400, "max_tokens"),
    ("max_completion_tokens negative", ok(max_completion_tokens=-5), 400, "max_completion_tokens"),
    ("five stop strings", ok(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    ("stop a number", ok(stop=3), 400, "stop"),
    ("stream not a bool", ok(stream="yes"), 400, "stream"),
    ("stream_options without stream", ok(stream_options={"include_usage": True}), 400, "stream_options"),
    ("seed a string", ok(seed="abc"), 400, "seed"),
    ("bad tool_choice", ok(tool_choice="sometimes"), 400, "tool_choice"),
    ("bad response_format type", ok(response_format={"type": "yaml"}), 400, "response_format.type"),
    ("top_logprobs too high", ok(top_logprobs=50), 400, "top_logprobs"),
    ("image input to text-only model",
     {"model": MODEL, "messages": [{"role": "user", "content": [
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}, 400, None),
    ("image output from local model", ok(modalities=["image"]), 400, "modalities"),
    ("google native tool on local model", ok(extra_body={"google": {"tools": [{"google_search": {}}]}}), 400, None),
    ("web search on local model", ok(web_search_options={}), 400, None),
    ("cached content on local model", ok(extra_body={"google": {"cached_content": "cachedContents/x"}}), 400, None),
    ("reasoning_effort with thinking_config",
     ok(reasoning_effort="low", extra_body={"google": {"thinking_config": {"thinking_budget": 10}}}), 400, None),
]


@pytest.mark.parametrize(("name", "body", "status", "param"), CASES, ids=[c[0] for c in CASES])
def test_bad_request(live: LiveServer, auth: dict[str, str], name: str, body: object, status: int,
                     param: str | None) -> None:
    url = live.url + "/v1/projects/my-project/locations/us-central1/endpoints/openapi/chat/completions"
    if isinstance(body, bytes):
        r = httpx.post(url, headers={**auth, "Content-Type": "application/json"}, content=body)
    else:
        r = httpx.post(url, headers=auth, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    # The next good request is still answered.
    good = httpx.post(url, headers=auth, json=ok(max_tokens=2), timeout=60)
    assert good.status_code == 200, good.text


@pytest.mark.parametrize("google", [
    {"safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]},
    {"labels": {"team": "a"}},
    {"thinking_config": {"include_thoughts": True}},
    {"thought_tag_marker": "think"},
])
def test_gemini_only_settings_are_ignored_by_local_models(live: LiveServer, auth: dict[str, str], google: dict) -> None:
    r = httpx.post(live.url + "/v1/chat/completions", headers=auth, json=ok(max_tokens=2, extra_body={"google": google}),
                   timeout=60)
    assert r.status_code == 200, r.text
