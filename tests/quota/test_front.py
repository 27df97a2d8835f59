"""Quotas at the front, in process over a fake engine: the 429, which limits apply, token
settlement, concurrency slots held by streams, the quota route, metrics, revocation, and a
store that cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette

from chatgate import config, tokens
from chatgate.errors import ContextLengthExceeded
from chatgate.front.app import build_app
from tests.asgi import StreamingTransport, running
from tests.front.conftest import asgi_client, body
from tests.front.fake import HELLO, MODEL, Fail, FakeEngine, Hang, Text, Usage
from tests.live import cli_env, run_cli
from tests.serve import free_port

PROJECT = "team-a"
ROUTE = f"/v1/projects/{PROJECT}/locations/us-central1/endpoints/openapi/chat/completions"
KEY, CI_KEY = "static-key", "ci-key"


def settings(path: Path, limits: dict[str, Any], **sections: Any) -> config.Settings:
    return config.load(
        None,
        environ={},
        overrides={
            "auth": {
                "state_dir": str(path),
                "api_keys": [KEY],
                "keys": [{"key": CI_KEY, "name": "ci"}, {"key": "other-key", "name": "other", "projects": ["b"]}],
            },
            "endpoints": {"fake-ep": {"model": MODEL}},
            "limits": limits,
            **sections,
        },
    )


@contextlib.asynccontextmanager
async def serving(
    app: Starlette, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app):
        if transport is None:
            async with asgi_client(app, base_url="http://chatgate", headers={"Authorization": f"Bearer {KEY}"}) as c:
                yield c
        else:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://chatgate", headers={"Authorization": f"Bearer {KEY}"}
            ) as c:
                yield c


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return 0.0


async def test_over_the_limit_is_a_429_in_openais_shape_naming_the_limit(tmp_path: Path) -> None:
    app = build_app(settings(tmp_path, {"default": {"requests_per_minute": 2}}), local=FakeEngine())
    async with serving(app) as http:
        assert [(await http.post(ROUTE, json=body())).status_code for _ in range(2)] == [200, 200]
        refused = await http.post(ROUTE, json=body())
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "30"  # one request every 30 s at 2 per minute
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
        assert "project 'team-a'" in error["message"] and "[limits.default] requests_per_minute" in error["message"]
        # The OpenAI SDK sees its own rate-limit error.
        async with openai.AsyncOpenAI(
            base_url="http://chatgate" + ROUTE.removesuffix("/chat/completions"),
            api_key=KEY,
            http_client=asgi_client(app),
            max_retries=0,
        ) as sdk:
            with pytest.raises(openai.RateLimitError, match="requests per minute"):
                await sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        scraped = (await http.get("/metrics")).text
        assert metric(scraped, "chatgate_quota_allowed_total", scope="project", limit="requests_per_minute") == 2
        assert metric(scraped, "chatgate_quota_refused_total", scope="project", limit="requests_per_minute") == 2
        # Other projects have their own default bucket.
        assert (await http.post(ROUTE.replace(PROJECT, "team-b"), json=body())).status_code == 200


async def test_a_refused_request_reaches_no_engine(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = build_app(settings(tmp_path, {"default": {"requests_per_minute": 1}}), local=engine)
    async with serving(app) as http:
        await http.post(ROUTE, json=body())
        assert (await http.post(ROUTE, json=body())).status_code == 429
        assert len(engine.calls) == 1


async def test_project_key_and_endpoint_limits_each_apply(tmp_path: Path) -> None:
    limits = {
        "default": {"requests_per_minute": 1},
        "projects": {PROJECT: {"requests_per_minute": 100}},
        "keys": {"ci": {"requests_per_minute": 1}},
        "endpoints": {"fake-ep": {"requests_per_minute": 1}},
    }
    app = build_app(settings(tmp_path, limits), local=FakeEngine())
    async with serving(app) as http:
        ci = {"Authorization": f"Bearer {CI_KEY}"}
        assert (await http.post(ROUTE, json=body(), headers=ci)).status_code == 200
        refused = await http.post(ROUTE, json=body(), headers=ci)
        assert refused.status_code == 429 and "key 'ci'" in refused.json()["error"]["message"]
        assert "[limits.keys.ci]" in refused.json()["error"]["message"]
        # The project's own limit (100) replaces the default (1); another key is not the ci key.
        assert [(await http.post(ROUTE, json=body())).status_code for _ in range(3)] == [200] * 3
        endpoint = ROUTE.replace("openapi", "fake-ep")
        assert (await http.post(endpoint, json=body())).status_code == 200
        refused = await http.post(endpoint, json=body())
        assert refused.status_code == 429 and "endpoint 'fake-ep'" in refused.json()["error"]["message"]
        # A project without its own entry falls back to the default.
        other = ROUTE.replace(PROJECT, "elsewhere")
        assert [(await http.post(other, json=body())).status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("stream", [False, True])
async def test_tokens_charged_at_admission_settle_to_the_real_usage(tmp_path: Path, stream: bool) -> None:
    # Each request may use 1000 output tokens (and its prompt): two would not fit in 2000
    # unless the first is settled to what it used (7 tokens). The bucket refills at 2000 a
    # minute, 33 a second: the margins below are tens of seconds of refill.
    limits = {"default": {"tokens_per_minute": 2000}, "default_output_tokens": 1000}
    engine = FakeEngine()
    app = build_app(settings(tmp_path, limits), local=engine)
    async with serving(app) as http:
        assert [(await http.post(ROUTE, json=body(stream=stream))).status_code for _ in range(5)] == [200] * 5
        (tpm,) = (await http.get(f"/v1/projects/{PROJECT}/quota")).json()["limits"]
        assert tpm["limit"] == "tokens_per_minute" and tpm["value"] == 2000
        assert 2000 - 5 * 7 - 1 <= tpm["remaining"] < 2000
        # A request that asks for little but uses much is charged what it used...
        engine.script = [Text("a long answer"), Usage(1500, 450)]
        assert (await http.post(ROUTE, json=body(stream=stream, max_tokens=100))).status_code == 200
        (tpm,) = (await http.get(f"/v1/projects/{PROJECT}/quota")).json()["limits"]
        assert tpm["remaining"] < 1000
        # ... so the next one, which may use 1000, is refused before it starts.
        refused = await http.post(ROUTE, json=body(stream=stream))
        assert refused.status_code == 429 and "2000 tokens per minute" in refused.json()["error"]["message"]
        assert len(engine.calls) == 6


async def test_a_stream_holds_its_concurrency_slot_until_it_ends(tmp_path: Path) -> None:
    engine = FakeEngine([Text("Hello"), Hang()])
    app = build_app(settings(tmp_path, {"default": {"concurrent": 1}}), local=engine)
    async with serving(app, StreamingTransport(app)) as http:
        async with http.stream("POST", ROUTE, json=body(stream=True)) as first:
            assert first.status_code == 200
            await engine.last.hanging.wait()
            refused = await http.post(ROUTE, json=body())
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
            assert "1 concurrent requests" in refused.json()["error"]["message"]
        # The client went away: the stream ended, and its slot is free again.
        engine.script = HELLO
        for _ in range(100):
            report = (await http.get(f"/v1/projects/{PROJECT}/quota")).json()
            if report["limits"][0]["remaining"] == 1:
                break
            await asyncio.sleep(0.01)
        assert (await http.post(ROUTE, json=body())).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_failed_requests_release_their_slot(tmp_path: Path, stream: bool) -> None:
    engine = FakeEngine([Fail(ContextLengthExceeded("the prompt is too long"))])
    app = build_app(settings(tmp_path, {"default": {"concurrent": 1}}), local=engine)
    async with serving(app) as http:
        for _ in range(3):  # admitted, then failed in the engine
            assert (await http.post(ROUTE, json=body(stream=stream))).status_code == 400
        # An unknown model is refused before admission.
        assert (await http.post(ROUTE, json=body(model="no/such-model"))).status_code == 404
        engine.script = HELLO
        assert (await http.post(ROUTE, json=body(stream=stream))).status_code == 200
        assert len(engine.calls) == 4


async def test_the_quota_route_shows_the_callers_limits_only_to_the_caller(tmp_path: Path) -> None:
    limits = {"default": {"requests_per_minute": 10, "concurrent": 3}, "keys": {"ci": {"tokens_per_minute": 500}}}
    app = build_app(settings(tmp_path, limits), local=FakeEngine([Text("hi"), Usage(3, 1)]))
    async with serving(app) as http:
        await http.post(ROUTE, json=body(), headers={"Authorization": f"Bearer {CI_KEY}"})
        report = (await http.get(f"/v1/projects/{PROJECT}/quota", headers={"Authorization": f"Bearer {CI_KEY}"})).json()
        rows = {(row["scope"], row["limit"]): row for row in report["limits"]}
        assert rows[("project", "requests_per_minute")]["remaining"] == 9
        assert rows[("project", "concurrent")]["remaining"] == 3
        assert rows[("key", "tokens_per_minute")]["remaining"] == 496
        assert rows[("project", "requests_per_minute")]["reset_seconds"] == pytest.approx(6.0, abs=0.5)
        assert report["project"] == PROJECT and report["shared"] is False
        # A static key without limits of its own sees its project's only.
        plain = (await http.get(f"/v1/projects/{PROJECT}/quota")).json()
        assert {row["scope"] for row in plain["limits"]} == {"project"}
        assert (await http.get(f"/v1/projects/{PROJECT}/quota", headers={"Authorization": ""})).status_code == 401
        forbidden = await http.get(f"/v1/projects/{PROJECT}/quota", headers={"Authorization": "Bearer other-key"})
        assert forbidden.status_code == 403
        assert (await http.get(f"/v9/projects/{PROJECT}/quota")).status_code == 404


async def test_no_limits_no_store_round_trip(tmp_path: Path) -> None:
    # An unreachable Redis would fail every request if anything asked it.
    state = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "on_error": "closed"}
    app = build_app(settings(tmp_path, {}, state=state), local=FakeEngine())
    async with serving(app) as http:
        assert (await http.post(ROUTE, json=body())).status_code == 200


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_an_unreachable_store_fails_open_or_closed(tmp_path: Path, policy: str) -> None:
    state = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "on_error": policy}
    app = build_app(settings(tmp_path, {"default": {"requests_per_minute": 1}}, state=state), local=FakeEngine())
    async with serving(app) as http:
        answers = [await http.post(ROUTE, json=body()) for _ in range(3)]
        if policy == "open":
            assert [a.status_code for a in answers] == [200] * 3
        else:
            assert [a.status_code for a in answers] == [503] * 3
            assert answers[0].headers["retry-after"] == "1"
            assert answers[0].json()["error"]["code"] == "quota_store_unavailable"
        assert metric((await http.get("/metrics")).text, "chatgate_quota_store_errors_total") >= 1


async def test_a_revoked_token_is_refused_by_the_running_server(tmp_path: Path) -> None:
    app = build_app(settings(tmp_path, {}), local=FakeEngine())
    token = tokens.mint(tokens.load_secret(tmp_path))
    kept = tokens.mint(tokens.load_secret(tmp_path))
    async with serving(app) as http:
        auth = {"Authorization": f"Bearer {token}"}
        assert (await http.post(ROUTE, json=body(), headers=auth)).status_code == 200
        conf = tmp_path / "chatgate.toml"
        conf.write_text(f'[auth]\nstate_dir = "{tmp_path}"\n')
        done = await asyncio.to_thread(run_cli, "token", "--config", str(conf), "--revoke", token, env=cli_env())
        assert done.returncode == 0, done.stderr
        token_id = tokens.verify(tokens.load_secret(tmp_path), token).token_id
        assert token_id in done.stdout
        for _ in range(500):  # the server reads revocations every half second
            answer = await http.post(ROUTE, json=body(), headers=auth)
            if answer.status_code != 200:
                break
            await asyncio.sleep(0.01)
        assert answer.status_code == 401 and "revoked" in answer.json()["error"]["message"]
        assert (await http.post(ROUTE, json=body(), headers={"Authorization": f"Bearer {kept}"})).status_code == 200


def test_revoke_by_id_and_bad_input(tmp_path: Path) -> None:
    conf = tmp_path / "chatgate.toml"
    conf.write_text(f'[auth]\nstate_dir = "{tmp_path}"\n')
    by_id = run_cli("token", "--config", str(conf), "--revoke", "abc123", env=cli_env())
    assert by_id.returncode == 0 and "revoked token abc123" in by_id.stdout
    assert "abc123 " in (tmp_path / "revoked-tokens").read_text()
    forged = tokens.mint(b"y" * 48)
    refused = run_cli("token", "--config", str(conf), "--revoke", forged, env=cli_env())
    assert refused.returncode == 2 and "not valid" in refused.stderr


def test_every_token_has_an_id(tmp_path: Path) -> None:
    secret = tokens.load_secret(tmp_path)
    first, second = (tokens.verify(secret, tokens.mint(secret)) for _ in range(2))
    assert first.token_id and first.token_id != second.token_id


def test_revoking_with_redis_gone_says_so(tmp_path: Path) -> None:
    conf = tmp_path / "chatgate.toml"
    conf.write_text(f'[auth]\nstate_dir = "{tmp_path}"\n[state]\nredis_url = "redis://127.0.0.1:{free_port()}/0"\n')
    result = run_cli("token", "--config", str(conf), "--revoke", "abc123", env=cli_env())
    assert result.returncode == 1 and "could not record the revocation" in result.stderr
    assert not (tmp_path / "revoked-tokens").exists()  # not silently somewhere no replica reads
