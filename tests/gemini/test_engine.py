"""The Gemini engine against the fake server: URLs, credentials, retries, errors, cancellation."""

from __future__ import annotations

import json

import pytest

from chatgate.config import GeminiSettings
from chatgate.engines.gemini import GeminiEngine, endpoint, is_configured
from chatgate.errors import (
    ChatgateError,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from chatgate.protocols import gemini as g
from chatgate.translate.request import to_gemini
from tests.gemini import helpers
from tests.gemini.conftest import settings
from tests.gemini.fake import FakeGemini, wait_for

OK = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP", "index": 0}]}
SIMPLE = g.GenerateContentRequest(contents=[g.Content(role="user", parts=[g.Part(text="hi")])])


async def collect(
    engine: GeminiEngine, stream: bool = False, request: g.GenerateContentRequest = SIMPLE
) -> list[g.GenerateContentResponse]:
    return [c async for c in engine.generate("gemini-2.5-flash", request, stream=stream)]


def error(status: str, code: int, message: str = "boom") -> dict[str, object]:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.mark.parametrize(
    ("overrides", "url"),
    [
        (
            {"location": "us-central1"},
            "https://us-central1-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-central1/publishers/google/models/m:generateContent",
        ),
        (
            {"location": "global", "api_version": "v1"},
            "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/m:generateContent",
        ),
        (
            {"location": "eu"},
            "https://aiplatform.eu.rep.googleapis.com/v1beta1/projects/p/locations/eu/publishers/google/models/m:generateContent",
        ),
        ({"mode": "gemini-api"}, "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent"),
        (
            {"base_url": "http://proxy.test/x/"},
            "http://proxy.test/x/v1beta1/projects/p/locations/us-central1/publishers/google/models/m:generateContent",
        ),
    ],
)
def test_endpoint_urls(overrides: dict[str, object], url: str) -> None:
    assert endpoint(GeminiSettings(project="p", **overrides), "m", stream=False) == url


def test_stream_endpoint_uses_sse() -> None:
    assert endpoint(GeminiSettings(project="p"), "m", stream=True).endswith("/models/m:streamGenerateContent?alt=sse")


@pytest.mark.parametrize(
    ("values", "configured"),
    [
        ({}, False),
        ({"project": "p"}, False),
        ({"project": "p", "access_token": "t"}, True),
        ({"project": "p", "use_adc": True}, True),
        ({"credentials_file": "/x.json"}, True),
        ({"api_key": "k"}, True),
        ({"mode": "gemini-api", "project": "p", "use_adc": True}, False),
        ({"mode": "gemini-api", "api_key": "k"}, True),
    ],
)
def test_is_configured(values: dict[str, object], configured: bool) -> None:
    assert is_configured(GeminiSettings(**values)) is configured


async def test_vertex_request_path_headers_and_body(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.reply(200, OK)
    [chunk] = await collect(engine)
    assert chunk.candidates[0].content.parts[0].text == "hi"
    seen = fake.seen[0]
    assert (
        seen.path
        == "/v1beta1/projects/proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert seen.headers["authorization"] == "Bearer tok"
    assert seen.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def test_gemini_api_key_header_and_vertex_only_fields_dropped(fake: FakeGemini) -> None:
    engine = GeminiEngine(settings(fake, mode="gemini-api", api_key="k", access_token=None))
    request, _ = to_gemini(
        helpers.openai_request(
            stream=True,
            tools=[{"type": "function", "function": {"name": "f"}}],
            extra_body={"google": {"labels": {"a": "b"}, "stream_function_call_arguments": True}},
        ),
        "google/gemini-2.5-flash",
    )
    fake.sse(OK)
    await collect(engine, stream=True, request=request)
    await engine.aclose()
    seen = fake.seen[0]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and seen.query == "alt=sse"
    assert seen.headers["x-goog-api-key"] == "k" and "authorization" not in seen.headers
    assert "labels" not in seen.body and "toolConfig" not in seen.body


async def test_vertex_express_mode_with_an_api_key(fake: FakeGemini) -> None:
    engine = GeminiEngine(settings(fake, project=None, access_token=None, api_key="k"))
    fake.reply(200, OK)
    await collect(engine)
    await engine.aclose()
    assert fake.seen[0].path == "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent"


async def test_requests_go_through_the_proxy_the_environment_names(
    fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake stands in for the proxy: a host that does not resolve is reached through it."""
    monkeypatch.setenv("HTTP_PROXY", fake.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    engine = GeminiEngine(GeminiSettings(project="proj", access_token="tok", base_url="http://gemini.invalid"))
    fake.reply(200, OK)
    assert len(await collect(engine)) == 1
    await engine.aclose()
    assert fake.seen[0].headers["host"] == "gemini.invalid"
    assert (
        fake.seen[0].path
        == "/v1beta1/projects/proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    )


async def test_the_proxy_is_looked_up_once_per_origin_on_the_event_loop(
    fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp's own ``trust_env`` looks up the proxy and ``.netrc`` on a worker thread for
    every request; chatgate does it once per origin, and never off the loop."""
    import threading

    from chatgate.engines import httpclient

    lookups: list[str] = []
    real = httpclient.get_env_proxy_for_url

    def counting(url: object) -> object:
        lookups.append(threading.current_thread().name)
        return real(url)  # type: ignore[arg-type]

    monkeypatch.setattr(httpclient, "get_env_proxy_for_url", counting)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    engine = GeminiEngine(GeminiSettings(project="proj", access_token="tok", base_url=fake.url))
    for _ in range(3):
        fake.reply(200, OK)
        assert len(await collect(engine)) == 1
    await engine.aclose()
    assert lookups == [threading.current_thread().name]
    assert len(fake.seen) == 3


async def test_retry_after_429_is_honoured_then_success(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.reply(429, [error("RESOURCE_EXHAUSTED", 429)], headers={"Retry-After": "0"})
    fake.reply(503, error("UNAVAILABLE", 503))
    fake.reply(200, OK)
    assert len(await collect(engine)) == 1
    assert len(fake.seen) == 3


async def test_retries_stop_at_max_retries_and_keep_retry_after(fake: FakeGemini, engine: GeminiEngine) -> None:
    for _ in range(3):
        fake.reply(429, error("RESOURCE_EXHAUSTED", 429, "quota"), headers={"Retry-After": "0"})
    with pytest.raises(RateLimited) as err:
        await collect(engine)
    assert len(fake.seen) == 3
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "0"
    assert err.value.to_dict()["error"]["status"] == "RESOURCE_EXHAUSTED"


async def test_a_long_retry_after_is_left_to_the_client(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.reply(429, error("RESOURCE_EXHAUSTED", 429), headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as err:
        await collect(engine)
    assert len(fake.seen) == 1 and err.value.headers["Retry-After"] == "3600"


async def test_400_is_not_retried(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.reply(400, error("INVALID_ARGUMENT", 400, "bad field"))
    with pytest.raises(ChatgateError) as err:
        await collect(engine)
    assert err.value.status == 400 and err.value.message == "Gemini: bad field" and len(fake.seen) == 1


async def test_no_retry_once_a_chunk_was_yielded(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.reply(
        200,
        chunks=[
            b"data: " + json.dumps(OK).encode() + b"\n\n",
            b"data: " + json.dumps(error("UNAVAILABLE", 503)).encode() + b"\n\n",
        ],
        content_type="text/event-stream",
    )
    got = []
    with pytest.raises(UpstreamUnavailable):
        async for chunk in engine.generate("gemini-2.5-flash", SIMPLE, stream=True):
            got.append(chunk)
    assert len(got) == 1 and len(fake.seen) == 1


async def test_closing_the_iterator_closes_the_upstream_request(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.sse(OK, hold=True)
    chunks = engine.generate("gemini-2.5-flash", SIMPLE, stream=True)
    await chunks.__anext__()
    await chunks.aclose()
    await wait_for(lambda: fake.disconnects == 1)


async def test_a_full_queue_is_429_with_retry_after(fake: FakeGemini) -> None:
    engine = GeminiEngine(settings(fake, max_concurrency=1, queue_size=0))
    try:
        fake.sse(OK, hold=True)
        held = engine.generate("gemini-2.5-flash", SIMPLE, stream=True)
        await held.__anext__()  # one request in flight, held open by the server
        with pytest.raises(RateLimited) as refused:
            await collect(engine)
        assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
        assert "Gemini" in refused.value.message
        assert len(fake.seen) == 1  # refused before reaching Google
        await held.aclose()
        fake.reply(200, OK)
        assert len(await collect(engine)) == 1  # the slot is free again
    finally:
        await engine.aclose()


async def test_a_gemini_that_stops_sending_is_504(fake: FakeGemini) -> None:
    engine = GeminiEngine(settings(fake, timeout=0.2, max_retries=0))
    try:
        fake.reply(200, chunks=[], hold=True)  # headers, then nothing
        with pytest.raises(UpstreamTimeout):
            await collect(engine)
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("status", "body", "expected", "google_status"),
    [
        (429, [error("RESOURCE_EXHAUSTED", 429)], 429, "RESOURCE_EXHAUSTED"),
        (400, error("FAILED_PRECONDITION", 400), 400, "FAILED_PRECONDITION"),
        (404, error("NOT_FOUND", 404), 404, "NOT_FOUND"),
        (409, error("ABORTED", 409), 409, "ABORTED"),
        (500, error("INTERNAL", 500), 500, "INTERNAL"),
        (501, error("UNIMPLEMENTED", 501), 501, "UNIMPLEMENTED"),
        (503, error("UNAVAILABLE", 503), 503, "UNAVAILABLE"),
        (504, error("DEADLINE_EXCEEDED", 504), 504, "DEADLINE_EXCEEDED"),
        (400, error("OUT_OF_RANGE", 400), 400, "OUT_OF_RANGE"),
        (502, b"<html><title>Bad Gateway</title></html>", 502, None),
    ],
)
async def test_b19_google_errors_map_to_openai_statuses(
    fake: FakeGemini, status: int, body: object, expected: int, google_status: str | None
) -> None:
    engine = GeminiEngine(settings(fake, max_retries=0))
    fake.reply(status, body, content_type="text/html" if isinstance(body, bytes) else None)
    with pytest.raises(ChatgateError) as err:
        await collect(engine)
    await engine.aclose()
    rendered = err.value.to_dict()["error"]
    assert err.value.status == expected
    assert rendered.get("status") == google_status
    assert ("boom" if google_status else "Bad Gateway") in err.value.message
    if expected == 429:
        assert isinstance(err.value, RateLimited) and rendered["type"] == "rate_limit_error"
    if expected == 400:
        assert rendered["type"] == "invalid_request_error"


async def test_error_inside_a_200_stream_before_any_chunk(fake: FakeGemini, engine: GeminiEngine) -> None:
    fake.reply(
        200,
        chunks=[b"data: " + json.dumps([error("INVALID_ARGUMENT", 400, "no")]).encode() + b"\n\n"],
        content_type="text/event-stream",
    )
    with pytest.raises(ChatgateError) as err:
        await collect(engine, stream=True)
    assert err.value.status == 400 and "no" in err.value.message


async def test_crlf_framed_stream(fake: FakeGemini, engine: GeminiEngine) -> None:
    event = b"data: " + json.dumps(OK).encode()
    fake.reply(
        200, chunks=[event[:10], event[10:] + b"\r\n\r\n", event + b"\r\n\r\n"], content_type="text/event-stream"
    )
    assert len(await collect(engine, stream=True)) == 2


async def test_unreachable_gemini_is_503() -> None:
    engine = GeminiEngine(GeminiSettings(project="p", access_token="t", base_url="http://127.0.0.1:9", max_retries=0))
    with pytest.raises(UpstreamUnavailable):
        await collect(engine)
    await engine.aclose()


async def test_without_credentials_the_error_says_how_to_configure() -> None:
    engine = GeminiEngine(GeminiSettings())
    with pytest.raises(UpstreamError) as err:
        await collect(engine)
    assert "gemini.project" in err.value.message and "api_key" in err.value.message
    await engine.aclose()


async def test_invalid_model_id_is_400(engine: GeminiEngine) -> None:
    with pytest.raises(InvalidRequest):
        [c async for c in engine.generate("../../etc", SIMPLE, stream=False)]


async def test_skip_thought_signature_validator_setting(fake: FakeGemini) -> None:
    engine = GeminiEngine(settings(fake, skip_thought_signature_validator=True))
    request, _ = to_gemini(
        helpers.openai_request(
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": "2"},
            ]
        ),
        "google/gemini-3-pro-preview",
    )
    fake.reply(200, OK)
    await collect(engine, request=request)
    await engine.aclose()
    parts = fake.seen[0].body["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "skip_thought_signature_validator" and "thoughtSignature" not in parts[1]
    assert request.contents[1].parts[0].thought_signature is None  # the caller's request is untouched


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
async def test_a_request_using_every_feature_matches_the_discovery_document(fake: FakeGemini, version: str) -> None:
    """The fixture validates the body the engine sent against aiplatform.<version>.json."""
    engine = GeminiEngine(settings(fake, api_version=version))
    request, _ = to_gemini(
        helpers.openai_request(
            messages=[
                {"role": "system", "content": "sys"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "high"}},
                        {"type": "input_audio", "input_audio": {"format": "wav", "data": "gs://b/a.wav"}},
                        {
                            "type": "file",
                            "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": "<t>hmm</t>ok",
                    "tool_calls": [
                        {
                            "id": "gem-1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": 1}'},
                            "extra_content": {"google": {"thought_signature": "U0lHQQ=="}},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "gem-1",
                    "content": '{"image_ref": {"$ref": "d.jpg"}}',
                    "extra_content": {
                        "google": {
                            "parts": [
                                {"inline_data": {"mime_type": "image/jpeg", "data": "AAAA", "display_name": "d.jpg"}}
                            ]
                        }
                    },
                },
            ],
            stream=True,
            temperature=1.0,
            top_p=0.9,
            max_completion_tokens=100,
            stop=["X"],
            seed=1,
            n=1,
            presence_penalty=0.1,
            frequency_penalty=0.1,
            modalities=["text", "image"],
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
                    },
                }
            ],
            tool_choice="validated",
            web_search_options={},
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
            extra_body={
                "google": {
                    "thinking_config": {"include_thoughts": True, "thinking_budget": 1000},
                    "thought_tag_marker": "t",
                    "safety_settings": [
                        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH", "method": "SEVERITY"}
                    ],
                    "cached_content": "projects/p/locations/l/cachedContents/c",
                    "labels": {"team": "x"},
                    "tools": [{"code_execution": {}}, {"url_context": {}}],
                    "stream_function_call_arguments": True,
                    "top_k": 40,
                    "image_config": {"aspect_ratio": "16:9"},
                }
            },
        ),
        "google/gemini-2.5-flash",
    )
    fake.sse(OK)
    await collect(engine, stream=True, request=request)
    await engine.aclose()
    body = fake.seen[0].body
    assert fake.seen[0].path.startswith(f"/{version}/")
    assert body["toolConfig"]["functionCallingConfig"] == {"mode": "VALIDATED", "streamFunctionCallArguments": True}
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
