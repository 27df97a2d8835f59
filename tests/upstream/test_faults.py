"""Failures of one upstream, each from a loopback server the test controls, seen through chatgate."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import openai
import pytest

from tests.openapi import validate_chunk, validate_completion
from tests.serve import free_port
from tests.upstream.servers import (
    GOOD_STREAM,
    Gateway,
    Request,
    Upstream,
    chunk,
    openai_stub,
    respond,
    respond_json,
    send_chunk,
    settings,
    sse,
    start_stream,
)

CHAT = {"messages": [{"role": "user", "content": "Hi"}]}
SECRET = "sk-upstream-secret-0123456789"


def gateway(*upstreams: str, **endpoint: object) -> Gateway:
    return Gateway(settings({"ep": {"upstreams": list(upstreams), "model": "stub-model", **endpoint}}))


def post(gw: Gateway, body: object = CHAT, **kw: object) -> httpx.Response:
    return httpx.post(gw.base("ep") + "/chat/completions", json=body, timeout=30, **kw)  # type: ignore[arg-type]


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base("ep"), api_key="unused", max_retries=0)


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str)
    return body["error"]  # type: ignore[no-any-return]


def stream_events(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of an SSE body, checking each event is whole."""
    text = response.text
    assert text.endswith("\n\n"), text
    events = [block for block in text.split("\n\n") if block]
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events
    return [e[len("data: ") :] for e in events]


# --- relaying as is ---------------------------------------------------------------------------


def test_body_relayed_byte_for_byte_and_answer_back() -> None:
    raw = b'{"model":"my-model",  "messages":[{"role":"user","content":"Hi"}], "x_vendor": {"k": 1}}'
    with Upstream(openai_stub) as up, gateway(up.url) as gw:
        response = httpx.post(
            gw.base("ep") + "/chat/completions", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200
        validate_completion(response.json())
        assert response.json()["choices"][0]["message"]["content"] == "Hello there."
        assert up.chats[0].body == raw
        assert up.chats[0].path == "/v1/chat/completions"


@pytest.mark.parametrize("given", [{}, {"model": None}, {"model": ""}])
def test_missing_model_filled_from_the_endpoint_default(given: dict[str, object]) -> None:
    with Upstream(openai_stub) as up, gateway(up.url) as gw:
        assert post(gw, {**CHAT, **given}).status_code == 200
        assert up.chats[0].json() == {**CHAT, "model": "stub-model"}


def test_openai_sdk_non_streaming_and_streaming() -> None:
    with Upstream(openai_stub) as up, gateway(up.url + "/v1/") as gw:  # a base with /v1 and a slash
        sdk = client(gw)
        answer = sdk.chat.completions.create(model="stub-model", messages=CHAT["messages"])  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "Hello there."
        pieces = sdk.chat.completions.create(model="stub-model", messages=CHAT["messages"], stream=True)  # type: ignore[arg-type]
        assert "".join(c.choices[0].delta.content or "" for c in pieces) == "Hello there."
        assert [r.path for r in up.chats] == ["/v1/chat/completions"] * 2


def test_stream_relayed_unchanged() -> None:
    with Upstream(openai_stub) as up, gateway(up.url) as gw:
        response = post(gw, {**CHAT, "stream": True})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.content == b"".join(GOOD_STREAM)
        for data in stream_events(response)[:-1]:
            validate_chunk(json.loads(data))


def test_credentials_sent_upstream_never_shown_and_client_key_not_forwarded(
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    async def refuse(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond_json(
            writer, {"error": {"message": f"bad key {SECRET}", "type": "invalid_request_error"}}, status=401
        )

    with Upstream(refuse) as up:
        endpoint = {"upstreams": [f"{up.url}/v1?key={SECRET}"], "api_key": SECRET, "headers": {"X-Tenant": "blue"}}
        auth = {"enabled": True, "api_keys": ["client-key"], "state_dir": str(tmp_path)}
        with caplog.at_level(logging.DEBUG), Gateway(settings({"ep": endpoint}, auth=auth)) as gw:
            # The front's auth applies: no key, no relay.
            assert post(gw).status_code == 401
            assert up.chats == []
            response = post(gw, headers={"Authorization": "Bearer client-key"})
    seen = up.chats[0].headers
    assert seen["authorization"] == f"Bearer {SECRET}"
    assert seen["x-tenant"] == "blue"
    assert up.chats[0].path == f"/v1/chat/completions?key={SECRET}"
    # The upstream refused chatgate's credentials: a gateway fault, not the client's 401.
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "upstream_auth_failed"
    assert SECRET not in response.text and "127.0.0.1" not in response.text
    assert SECRET not in caplog.text


# --- failures before the answer -----------------------------------------------------------------


def test_connection_refused_is_503() -> None:
    with gateway(f"http://127.0.0.1:{free_port()}") as gw:
        response = post(gw)
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "upstream_unavailable"
        assert "is down" in str(error["message"]) and "Connection refused" in str(error["message"])
        assert "Retry-After" in response.headers
        with pytest.raises(openai.InternalServerError):
            client(gw).chat.completions.create(model="m", messages=CHAT["messages"])  # type: ignore[arg-type]


def test_slow_first_byte_is_504() -> None:
    async def slow(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    with Upstream(slow) as up, gateway(up.url, timeout=0.3) as gw:
        response = post(gw, {**CHAT, "stream": True})
        assert response.status_code == 504
        assert error_of(response)["code"] == "upstream_timeout"
        assert len(up.chats) == 1  # a timeout is not retried


def test_html_500_is_wrapped() -> None:
    async def html(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 500, b"<html><body><h1>Oops</h1></body></html>", content_type="text/html")

    with Upstream(html) as up, gateway(up.url) as gw:
        response = post(gw)
        assert response.status_code == 500
        error = error_of(response)
        assert error["type"] == "api_error"
        assert "text/html" in str(error["message"]) and "<html>" not in str(error["message"])
        with pytest.raises(openai.InternalServerError):
            client(gw).chat.completions.create(model="m", messages=CHAT["messages"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"model is loading", "text/plain", "model is loading"),
        (b"", "text/plain", "empty body"),
        (
            b'{"error": "Input validation error: too long", "error_type": "validation"}',
            "application/json",
            "Input validation error: too long",
        ),
    ],
)
def test_other_bodies_are_wrapped(body: bytes, content_type: str, expected: str) -> None:
    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 503 if not body else 422, body, content_type=content_type)

    with Upstream(answer) as up, gateway(up.url) as gw:
        response = post(gw)
        assert response.status_code == (503 if not body else 422)
        assert expected in str(error_of(response)["message"])


def test_openai_error_passed_through() -> None:
    upstream_error = {
        "message": "temperature must be at most 2",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }

    async def reject(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond_json(writer, {"error": upstream_error}, status=400)

    with Upstream(reject) as up, gateway(up.url) as gw:
        response = post(gw, {**CHAT, "temperature": 9})
        assert response.status_code == 400
        assert error_of(response) == upstream_error
        with pytest.raises(openai.BadRequestError) as caught:
            client(gw).chat.completions.create(model="m", messages=CHAT["messages"])  # type: ignore[arg-type]
        assert caught.value.code == "invalid_value"


def test_429_passed_on_with_retry_after() -> None:
    async def busy(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond_json(
            writer,
            {"error": {"message": "slow down", "type": "rate_limit_error"}},
            status=429,
            headers={"Retry-After": "7"},
        )

    with Upstream(busy) as up, gateway(up.url) as gw:
        response = post(gw)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert error_of(response)["message"] == "slow down"
        with pytest.raises(openai.RateLimitError) as caught:
            client(gw).chat.completions.create(model="m", messages=CHAT["messages"])  # type: ignore[arg-type]
        assert caught.value.response.headers["retry-after"] == "7"


def test_html_with_200_is_a_502() -> None:
    async def web_page(request: Request, writer: asyncio.StreamWriter) -> None:
        await respond(writer, 200, b"<html>a web UI</html>", content_type="text/html")

    with Upstream(web_page) as up, gateway(up.url) as gw:
        response = post(gw)
        assert response.status_code == 502
        assert "not JSON" in str(error_of(response)["message"])


def test_bad_input_is_a_400_before_any_relay() -> None:
    with Upstream(openai_stub) as up, gateway(up.url) as gw:
        for raw in (b"[1, 2]", b"{not json", b""):
            response = httpx.post(
                gw.base("ep") + "/chat/completions", content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, raw
        assert up.chats == []


# --- failures in the middle of a stream -----------------------------------------------------------


@pytest.mark.parametrize("torn", [b"", b'data: {"id": "chatcmpl-stub", "obj'])
def test_stream_cut_midway_ends_with_an_error_event(torn: bytes) -> None:
    async def cut(request: Request, writer: asyncio.StreamWriter) -> None:
        await start_stream(writer)
        await send_chunk(writer, GOOD_STREAM[0])
        await send_chunk(writer, GOOD_STREAM[1] + torn)
        writer.transport.abort()  # no closing chunk: the upstream died

    with Upstream(cut) as up, gateway(up.url) as gw:
        response = post(gw, {**CHAT, "stream": True})
        assert response.status_code == 200
        events = stream_events(response)
        assert [json.loads(e) for e in events[:2]] == [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hello"}),
        ]
        last = json.loads(events[-1])
        assert len(events) == 3 and set(last) == {"error"}
        assert last["error"]["code"] == "upstream_error"

        with pytest.raises(openai.APIError, match="broke off"):
            for _ in client(gw).chat.completions.create(model="m", messages=CHAT["messages"], stream=True):  # type: ignore[arg-type]
                pass


def test_stream_stall_ends_with_a_timeout_event() -> None:
    async def stall(request: Request, writer: asyncio.StreamWriter) -> None:
        await start_stream(writer)
        await send_chunk(writer, sse(chunk({"role": "assistant", "content": ""})))
        await asyncio.sleep(3600)

    with Upstream(stall) as up, gateway(up.url, timeout=0.3) as gw:
        events = stream_events(post(gw, {**CHAT, "stream": True}))
        assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"
