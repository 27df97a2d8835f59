"""SIGTERM, as Kubernetes and systemd send it, to a real ``chatgate serve`` with work of every
kind in flight: local generations running (under grammars), one queued (its schema not yet
compiled), a
relayed stream and a Gemini stream. The process exits within ``shutdown_timeout`` and a few
seconds, every stream ends with an error event (not a cut connection), the queued request gets
a 503, and the upstreams see their connections closed: nothing is left running."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gemini.fake import FakeGemini
from tests.hardening.conftest import OK
from tests.live import CliServer, cli_env
from tests.upstream.servers import Request, Upstream, chunk, send_chunk, sse, start_stream, wait_until

MODEL = "huggingfacetb/smollm2-135m-instruct"
SHUTDOWN_TIMEOUT = 2.0
CHAT = "/v1/chat/completions"
RELAY = "/v1/projects/default/locations/us-central1/endpoints/stub/chat/completions"
LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Count from one to a thousand in words."}],
    "max_tokens": 3000,
    "temperature": 0,
}
LIST = {
    "type": "json_schema",
    "json_schema": {
        "name": "words",
        "schema": {
            "type": "object",
            "required": ["words"],
            "properties": {  # more words than max_tokens: it cannot end
                "words": {"type": "array", "items": {"type": "string", "maxLength": 8}, "minItems": 2000}
            },
        },
    },
}

TOOL = {"type": "function", "function": {"name": "say", "parameters": LIST["json_schema"]["schema"]}}  # type: ignore[index]


class Stream(threading.Thread):
    """A streaming request read to its end in a thread: the SSE events it got, once started."""

    def __init__(self, url: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.started = threading.Event()
        self.status = 0
        self.events: list[Any] = []
        self.complete = False  # the body ended properly (not a cut connection)

    def run(self) -> None:
        with httpx.stream("POST", self.url, json={**self.body, "stream": True}, timeout=120) as response:
            self.status = response.status_code
            try:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        data = line.removeprefix("data: ")
                        self.events.append(data if data == "[DONE]" else json.loads(data))
                        self.started.set()
                self.complete = True
            except httpx.HTTPError:
                pass
            finally:
                self.started.set()


class Post(threading.Thread):
    def __init__(self, url: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.response: httpx.Response | None = None

    def run(self) -> None:
        self.response = httpx.post(self.url, json=self.body, timeout=120)


async def _relay_then_hang(request: Request, writer: Any) -> None:
    await start_stream(writer)
    await send_chunk(writer, sse(chunk({"content": "Hel"})))
    await asyncio.Event().wait()  # a long generation upstream


def _queued(server: CliServer) -> int:
    metrics = httpx.get(server.url + "/metrics", timeout=5).text
    line = next(line for line in metrics.splitlines() if line.startswith("chatgate_local_queue_waiting{"))
    return int(float(line.rsplit(" ", 1)[1]))


@pytest.mark.model
def test_sigterm_ends_everything_in_flight_and_exits(tmp_path: Path) -> None:
    fake = FakeGemini()
    fake.start()
    fake.sse(OK, hold=True)
    try:
        with Upstream(_relay_then_hang, watch_close=True) as upstream:
            toml = tmp_path / "chatgate.toml"
            toml.write_text(f"""
[server]
shutdown_timeout = {SHUTDOWN_TIMEOUT}
[local]
parallel = 2
queue_size = 4
[gemini]
project = "proj"
access_token = "tok"
base_url = "{fake.url}"
max_retries = 0
[endpoints.stub]
upstreams = ["{upstream.url}"]
""")
            server = CliServer("--no-auth", "--config", str(toml), env=cli_env())
            with server:
                streams = {
                    # Under a grammar that cannot end before max_tokens (free text may end at once).
                    "json": Stream(server.url + CHAT, {**LONG, "response_format": LIST}),
                    "tool call": Stream(server.url + CHAT, {**LONG, "tools": [TOOL], "tool_choice": "required"}),
                    "relay": Stream(server.url + RELAY, {"model": "m", "messages": LONG["messages"]}),
                    "gemini": Stream(server.url + CHAT, {**LONG, "model": "google/gemini-2.5-flash"}),
                }
                for stream in streams.values():
                    stream.start()
                for name, stream in streams.items():
                    assert stream.started.wait(120), name
                    assert stream.status == 200 and stream.events, (name, stream.status)
                queued = Post(server.url + CHAT, {**LONG, "stream": False, "response_format": LIST})
                queued.start()
                wait_until(
                    lambda: _queued(server) == 1,
                    f"a request waiting for a context {[(n, s.complete, len(s.events)) for n, s in streams.items()]}",
                )

                assert server.proc is not None
                server.proc.send_signal(signal.SIGTERM)
                # The property under test: out within the drain time plus a few seconds.
                server.proc.wait(timeout=SHUTDOWN_TIMEOUT + 15)
                # uvicorn re-raises the signal once it has shut down, as a process killed by it.
                assert server.proc.returncode in (0, -signal.SIGTERM)
                output = server.printed()
                assert "Traceback" not in output, output

            for name, stream in streams.items():
                stream.join(30)
                assert stream.complete, f"{name}: the connection was cut"
                last = stream.events[-1]
                assert isinstance(last, dict) and last["error"]["code"] == "server_shutting_down", (name, last)
            queued.join(30)
            assert queued.response is not None and queued.response.status_code == 503
            assert queued.response.json()["error"]["code"] == "server_shutting_down"
            assert upstream.closed.wait(10), "the relayed upstream request was left open"
        assert fake.disconnects == 1, "the Gemini call was left open"
    finally:
        fake.stop()
