"""Gemini through the native routes: google-genai against a live chatgate whose Gemini engine
reaches the fake Gemini server replaying recorded responses. Requests go to Google as the
client sent them, under chatgate's project and credentials; answers come back as Google sent
them; Google's model list feeds the listings."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials

from chatgate import config
from chatgate.engines.local.engine import LocalEngine
from tests.gemini import discovery
from tests.gemini.fake import RECORDINGS, FakeGemini
from tests.live import LiveServer
from tests.native.conftest import SCHEMAS, google_error, stream_elements, validate

GOOGLE = "/v1beta1/projects/proj/locations/global/publishers/google/models"


def _checked(response: httpx.Response) -> None:
    response.read()
    if response.status_code >= 400:
        google_error(response.json())
        return
    method = response.request.url.path.rpartition(":")[2]
    if method == "streamGenerateContent":
        for element in stream_elements(response):
            validate(element, method)
    elif method in SCHEMAS:
        validate(response.json(), method)


@pytest.fixture(scope="module")
def live(_server: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = config.load(
        None,
        environ={},
        overrides={
            "auth": {"enabled": False, "state_dir": str(tmp_path_factory.mktemp("state"))},
            "gemini": {
                "project": "proj",
                "location": "global",
                "access_token": "tok",
                "base_url": _server.url,
                "max_retries": 0,
            },
        },
    )
    with LiveServer(settings, local=LocalEngine([])) as server:
        yield server


@pytest.fixture
def client(live: LiveServer, fake: FakeGemini) -> Iterator[genai.Client]:
    with httpx.Client(event_hooks={"response": [_checked]}) as http:
        yield genai.Client(
            vertexai=True,
            project="client-project",
            location="us-central1",
            credentials=Credentials(token="client-token"),
            http_options=types.HttpOptions(base_url=live.url, httpx_client=http),
        )


def test_generate_content_passes_through(client: genai.Client, fake: FakeGemini) -> None:
    fake.replay("vertexai/unary-success-basic-reply-short.json")
    config = types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.2, top_k=3, seed=5)
    response = client.models.generate_content(model="gemini-2.5-flash", contents="Where is Google?", config=config)
    assert response.text == "Mountain View, California"
    assert response.candidates and response.candidates[0].safety_ratings  # Google's fields, as they came
    seen = fake.seen[-1]
    # chatgate's project, location and credentials: the client's never reach Google.
    assert seen.path == f"{GOOGLE}/gemini-2.5-flash:generateContent"
    assert seen.headers["authorization"] == "Bearer tok"
    assert seen.body["systemInstruction"] == {"parts": [{"text": "Be brief."}], "role": "user"}
    assert seen.body["generationConfig"] == {"temperature": 0.2, "topK": 3, "seed": 5}


def test_stream_passes_through(client: genai.Client, fake: FakeGemini) -> None:
    fake.replay("vertexai/streaming-success-basic-reply-long.txt")
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Tell me a story"))
    assert len(chunks) > 1
    expected = "".join(
        part.get("text", "")
        for line in (RECORDINGS / "vertexai/streaming-success-basic-reply-long.txt").read_text().splitlines()
        if line.startswith("data:")
        for candidate in json.loads(line.removeprefix("data:")).get("candidates", [])
        for part in candidate.get("content", {}).get("parts", [])
    )
    assert "".join(chunk.text or "" for chunk in chunks) == expected
    assert fake.seen[-1].path.endswith(":streamGenerateContent") and fake.seen[-1].query == "alt=sse"


def test_count_tokens_passes_through(client: genai.Client, fake: FakeGemini) -> None:
    fake.replay("vertexai/unary-success-detailed-token-response.json")
    counted = client.models.count_tokens(
        model="gemini-2.5-flash",
        contents="How many tokens?",
        config=types.CountTokensConfig(system_instruction="Be brief."),
    )
    assert counted.total_tokens == 1837
    seen = fake.seen[-1]
    assert seen.path == f"{GOOGLE}/gemini-2.5-flash:countTokens"
    discovery.validate(seen.body, "GoogleCloudAiplatformV1beta1CountTokensRequest")
    assert seen.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]


def test_googles_errors_keep_their_status(client: genai.Client, fake: FakeGemini) -> None:
    fake.replay("vertexai/unary-failure-model-not-found.json")
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="test-model-name", contents="hi")
    assert raised.value.code == 404 and raised.value.status == "NOT_FOUND"
    assert "test-model-name is not found" in (raised.value.message or "")


def test_googles_model_list_feeds_the_listings(live: LiveServer, client: genai.Client, fake: FakeGemini) -> None:
    fake.reply(
        200,
        {
            "publisherModels": [
                {"name": "publishers/google/models/gemini-2.5-flash", "versionId": "001"},
                {"name": "publishers/google/models/imagen-4.0-generate-001"},
            ],
            "nextPageToken": "page-2",
        },
    )
    fake.reply(200, {"publisherModels": [{"name": "publishers/google/models/gemini-2.5-pro"}]})
    with openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0) as sdk:
        ids = [m.id for m in sdk.models.list()]
    assert ids == ["google/gemini-2.5-flash", "google/gemini-2.5-pro"]  # generating models only
    listed = [request for request in fake.seen if request.method == "GET"]
    assert [r.path for r in listed] == ["/v1beta1/publishers/google/models"] * 2
    assert "pageToken=page-2" in listed[1].query and listed[0].headers["authorization"] == "Bearer tok"
    # Cached: the native listing and a lookup ask Google nothing more.
    names = [m.name for m in client.models.list()]
    assert names == ["publishers/google/models/gemini-2.5-flash", "publishers/google/models/gemini-2.5-pro"]
    assert client.models.get(model="gemini-2.5-pro").name == "publishers/google/models/gemini-2.5-pro"
    with pytest.raises(errors.ClientError) as raised:
        client.models.get(model="gemini-0-nope")
    assert raised.value.code == 404
    assert len([request for request in fake.seen if request.method == "GET"]) == 2


def test_api_key_mode(live: LiveServer, fake: FakeGemini) -> None:
    fake.replay("vertexai/unary-success-basic-reply-short.json")
    client = genai.Client(api_key="any", http_options=types.HttpOptions(base_url=live.url))
    response = client.models.generate_content(model="gemini-2.5-flash", contents="Where is Google?")
    assert response.text == "Mountain View, California"
    assert fake.seen[-1].path == f"{GOOGLE}/gemini-2.5-flash:generateContent"
