"""Requests the local model cannot serve: each gets the right 4xx, an OpenAI-style error, and
the server keeps answering good requests. Malformed requests are tested without a model, in
``tests/front/test_bad_input.py``."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MODEL
from tests.live import LiveServer

pytestmark = pytest.mark.model

M = [{"role": "user", "content": "hi"}]


def ok(**fields: object) -> dict[str, object]:
    return {"model": MODEL, "messages": M, **fields}


# What only the local engine refuses (a text-only model, Google's native features). The
# request-level cases (JSON, fields, ranges, routes) run without a model in tests/front.
# (name, JSON body, status, param)
CASES: list[tuple[str, object, int, str | None]] = [
    (
        "image input to text-only model",
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}],
                }
            ],
        },
        400,
        None,
    ),
    ("image output from local model", ok(modalities=["image"]), 400, "modalities"),
    ("google native tool on local model", ok(extra_body={"google": {"tools": [{"google_search": {}}]}}), 400, None),
    ("web search on local model", ok(web_search_options={}), 400, None),
    (
        "unknown cached content",
        ok(extra_body={"google": {"cached_content": "cachedContents/x"}}),
        404,
        "extra_body.google.cached_content",
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "param"), CASES, ids=[c[0] for c in CASES])
def test_bad_request(
    live: LiveServer, auth: dict[str, str], name: str, body: object, status: int, param: str | None
) -> None:
    url = live.url + "/v1/projects/my-project/locations/us-central1/endpoints/openapi/chat/completions"
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


@pytest.mark.parametrize(
    "google",
    [
        {"safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]},
        {"labels": {"team": "a"}},
        {"thinking_config": {"include_thoughts": True}},
        {"thought_tag_marker": "think"},
    ],
)
def test_gemini_only_settings_are_ignored_by_local_models(live: LiveServer, auth: dict[str, str], google: dict) -> None:
    r = httpx.post(
        live.url + "/v1/chat/completions",
        headers=auth,
        json=ok(max_tokens=2, extra_body={"google": google}),
        timeout=60,
    )
    assert r.status_code == 200, r.text
