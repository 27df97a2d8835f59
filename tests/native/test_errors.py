"""Every refusal on the native routes in Google's shape, with the status Google would send
and a message naming the field; errors after a stream started end it in that shape too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from chatgate.errors import ContextLengthExceeded, RateLimited, UpstreamTimeout
from chatgate.front.app import build_app
from tests.asgi import running
from tests.front.conftest import AUTH, KEY, settings, token
from tests.front.fake import Fail, FakeEngine, Text
from tests.native.conftest import API, VERTEX, google_error, google_shaped, hello, stream_elements

URL = f"{VERTEX}/fake/models/model-a:generateContent"


async def refused(native: httpx.AsyncClient, body: Any, status: int, name: str, url: str = URL) -> str:
    r = await _post(native, url, body)
    assert r.status_code == status, r.text
    error = google_error(r.json())
    assert (error["code"], error["status"]) == (status, name)
    return str(error["message"])


async def _post(native: httpx.AsyncClient, url: str, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return await native.post(url, headers={**AUTH, "content-type": "application/json"}, content=body)
    return await native.post(url, headers=AUTH, json=body)


async def test_bad_json(native: httpx.AsyncClient) -> None:
    assert "not valid JSON" in await refused(native, b'{"contents": [', 400, "INVALID_ARGUMENT")
    assert "empty" in await refused(native, b"", 400, "INVALID_ARGUMENT")


async def test_missing_contents(native: httpx.AsyncClient) -> None:
    assert "contents" in await refused(native, {"generationConfig": {}}, 400, "INVALID_ARGUMENT")
    assert "contents" in await refused(native, {"contents": []}, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (hello(generationConfig={"temperature": "hot"}), "generationConfig.temperature"),
        (hello(generationConfig={"maxOutputTokens": 1.5}), "generationConfig.maxOutputTokens"),
        ({"contents": [{"role": "user", "parts": "hi"}]}, "contents[0].parts"),
        ({"contents": "hi"}, "contents"),
        (
            hello(tools=[{"functionDeclarations": [{"description": "no name"}]}]),
            "tools[0].functionDeclarations[0].name",
        ),
        (hello(generationConfig={"temperature": 3}), "generationConfig.temperature"),
        (hello(generationConfig={"topP": -0.1}), "generationConfig.topP"),
        (hello(generationConfig={"candidateCount": 9}), "generationConfig.candidateCount"),
        (hello(generationConfig={"maxOutputTokens": 0}), "generationConfig.maxOutputTokens"),
        (hello(generationConfig={"stopSequences": list("abcdef")}), "generationConfig.stopSequences"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts"),
        ({"contents": [{"role": "user", "parts": [{}]}]}, "contents[0].parts[0]"),
    ],
)
async def test_bad_fields_are_named(native: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    assert f"`{field}`" in await refused(native, body, 400, "INVALID_ARGUMENT")


async def test_count_tokens_names_the_wrapped_field(native: httpx.AsyncClient) -> None:
    body = {"generateContentRequest": {"contents": [{"role": "bot", "parts": [{"text": "x"}]}]}}
    url = URL.replace(":generateContent", ":countTokens")
    assert "`generateContentRequest.contents[0].role`" in await refused(native, body, 400, "INVALID_ARGUMENT", url)


async def test_unknown_model_and_method(native: httpx.AsyncClient) -> None:
    message = await refused(native, hello(), 404, "NOT_FOUND", f"{VERTEX}/acme/models/nope:generateContent")
    assert "acme/nope" in message and "fake/model-a" in message  # says what is served
    await refused(native, hello(), 404, "NOT_FOUND", f"{API}/nope:generateContent")  # Gemini, not configured
    assert "embedContent" in await refused(native, hello(), 404, "NOT_FOUND", URL.replace("generate", "embed"))
    await refused(native, hello(), 404, "NOT_FOUND", URL.replace("v1beta1", "v2"))
    r = await native.get(f"{VERTEX}/acme/models/nope", headers=AUTH)
    assert r.status_code == 404 and google_error(r.json())["status"] == "NOT_FOUND"


async def test_a_wrong_method_and_an_unmatched_path_answer_in_googles_shape(native: httpx.AsyncClient) -> None:
    """Routing's own refusals too: a DELETE of a generate method, a path no route matches."""
    r = await native.delete(URL, headers=AUTH)
    assert r.status_code == 405 and google_error(r.json())["status"] == "UNIMPLEMENTED"
    r = await native.post(f"{VERTEX}/fake/models/model-a/extra:generateContent", headers=AUTH, json=hello())
    assert r.status_code == 404 and google_error(r.json())["status"] == "NOT_FOUND"


async def test_content_type_and_size(native: httpx.AsyncClient) -> None:
    r = await native.post(URL, headers={**AUTH, "content-type": "text/plain"}, content=b"{}")
    assert r.status_code == 415 and google_error(r.json())["status"] == "INVALID_ARGUMENT"


async def test_credentials(native: httpx.AsyncClient, state_path: Path) -> None:
    r = await native.post(URL, json=hello())
    assert r.status_code == 401 and google_error(r.json())["status"] == "UNAUTHENTICATED"
    r = await native.post(URL, headers={"x-goog-api-key": "wrong"}, json=hello())
    assert r.status_code == 401 and google_error(r.json())["status"] == "UNAUTHENTICATED"
    r = await native.post(f"{API}/fake/model-a:generateContent", params={"key": "wrong"}, json=hello())
    assert r.status_code == 401 and google_error(r.json())["status"] == "UNAUTHENTICATED"
    # A key or token for another project is refused for this one.
    r = await native.post(URL, headers={"x-goog-api-key": "scoped-key"}, json=hello())
    assert r.status_code == 403 and google_error(r.json())["status"] == "PERMISSION_DENIED"
    other = token(state_path, project="other")
    r = await native.post(URL, headers={"Authorization": f"Bearer {other}"}, json=hello())
    assert r.status_code == 403 and google_error(r.json())["status"] == "PERMISSION_DENIED"
    r = await native.get(f"{API}", params={"key": "wrong"})
    assert r.status_code == 401
    r = await native.post(f"{API}/fake/model-a:generateContent", params={"key": KEY}, json=hello())
    assert r.status_code == 200


async def test_quota(state_path: Path) -> None:
    limits = {"default": {"requests_per_minute": 1}}
    application = build_app(settings(state_path, limits=limits), local=FakeEngine())
    async with running(application):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(application),
            base_url="http://c",
            event_hooks={"response": [google_shaped]},
        ) as http:
            assert (await http.post(URL, headers=AUTH, json=hello())).status_code == 200
            r = await http.post(URL, headers=AUTH, json=hello())
    assert r.status_code == 429
    assert google_error(r.json())["status"] == "RESOURCE_EXHAUSTED"
    assert int(r.headers["retry-after"]) >= 1


ENGINE_ERRORS = [
    (RateLimited("busy; retry later", retry_after=3), 429, "RESOURCE_EXHAUSTED"),
    (ContextLengthExceeded("the prompt does not fit"), 400, "INVALID_ARGUMENT"),
    (UpstreamTimeout("Gemini did not answer in time"), 504, "DEADLINE_EXCEEDED"),
]


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent"])
@pytest.mark.parametrize(("error", "status", "name"), ENGINE_ERRORS, ids=[e[2] for e in ENGINE_ERRORS])
async def test_engine_errors_before_the_first_chunk(
    native: httpx.AsyncClient, engine: FakeEngine, method: str, error: Exception, status: int, name: str
) -> None:
    engine.script = [Fail(error)]
    url = URL.replace("generateContent", method)
    assert await refused(native, hello(), status, name, url) == error.args[0]


@pytest.mark.parametrize("sse", [False, True])
async def test_an_error_after_the_stream_started_is_its_last_element(
    native: httpx.AsyncClient, engine: FakeEngine, sse: bool
) -> None:
    engine.script = [Text("Hel"), Fail(UpstreamTimeout("Gemini stopped answering"))]
    url = URL.replace("generateContent", "streamGenerateContent") + ("?alt=sse" if sse else "")
    r = await native.post(url, headers=AUTH, json=hello())
    assert r.status_code == 200
    elements = stream_elements(r)  # still a whole JSON array, or whole events
    assert elements[0]["candidates"][0]["content"]["parts"] == [{"text": "Hel"}]
    assert google_error(elements[-1]) == {
        "code": 504,
        "message": "Gemini stopped answering",
        "status": "DEADLINE_EXCEEDED",
    }
