"""Google's own SDK (``google-genai``) against a live chatgate on the embedded model:
``caches.create/get/list/update/delete``, and a request through the OpenAI route that uses the
cache, and one through the SDK's own generateContent."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import openai
import pytest
from google import genai
from google.genai import types
from google.oauth2.credentials import Credentials

from chatgate.engines.local.batching import CHUNK
from tests.conftest import MODEL, OPENAPI, PROJECT
from tests.gemini import discovery
from tests.live import LiveServer

pytestmark = pytest.mark.model

MANUAL = "The blue door opens with the code 4711. The red door opens with the code 1234. " * 8


@pytest.fixture
def vertex(live: LiveServer) -> Iterator[genai.Client]:
    """The SDK in Vertex AI mode, its bearer token chatgate's static key."""
    client = genai.Client(
        vertexai=True,
        project=PROJECT,
        location="us-central1",
        credentials=Credentials(token="static-key"),  # type: ignore[no-untyped-call]
        http_options=types.HttpOptions(base_url=live.url, api_version="v1"),
    )
    yield client
    for cache in client.caches.list():
        assert cache.name is not None
        client.caches.delete(name=cache.name)


@pytest.fixture
def gemini_api(live: LiveServer) -> genai.Client:
    """The SDK in Gemini API mode, chatgate's static key as its API key."""
    return genai.Client(api_key="static-key", http_options=types.HttpOptions(base_url=live.url))


def _config(**fields: object) -> types.CreateCachedContentConfig:
    return types.CreateCachedContentConfig(
        display_name="doors",
        system_instruction="Answer from the manual.",
        contents=[types.Content(role="user", parts=[types.Part(text=MANUAL)])],
        **fields,  # type: ignore[arg-type]
    )


def test_create_get_list_update_delete(vertex: genai.Client, live: LiveServer) -> None:
    created = vertex.caches.create(model=MODEL, config=_config(ttl="600s"))
    assert created.name is not None and created.name.startswith(
        f"projects/{PROJECT}/locations/us-central1/cachedContents/"
    )
    assert (
        created.model
        == f"projects/{PROJECT}/locations/us-central1/publishers/huggingfacetb/models/smollm2-135m-instruct"
    )
    assert created.display_name == "doors"
    assert created.usage_metadata is not None and (created.usage_metadata.total_token_count or 0) > 100
    assert created.expire_time is not None and created.create_time is not None
    assert 590 <= (created.expire_time - created.create_time).total_seconds() <= 600

    got = vertex.caches.get(name=created.name)
    assert got.name == created.name and got.usage_metadata == created.usage_metadata
    assert [c.name for c in vertex.caches.list()] == [created.name]

    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=3)
    updated = vertex.caches.update(name=created.name, config=types.UpdateCachedContentConfig(expire_time=later))
    assert updated.expire_time is not None and abs((updated.expire_time - later).total_seconds()) < 1
    updated = vertex.caches.update(name=created.name, config=types.UpdateCachedContentConfig(ttl="120s"))
    assert updated.expire_time is not None and updated.expire_time < later

    vertex.caches.delete(name=created.name)
    with pytest.raises(genai.errors.ClientError) as refused:
        vertex.caches.get(name=created.name)
    assert refused.value.code == 404 and refused.value.status == "NOT_FOUND"


def test_list_pages(vertex: genai.Client) -> None:
    names = [vertex.caches.create(model=MODEL, config=_config()).name for _ in range(3)]
    pager = vertex.caches.list(config=types.ListCachedContentsConfig(page_size=2))
    assert len(pager.page) == 2
    assert [c.name for c in pager] == names


def test_gemini_api_form(gemini_api: genai.Client) -> None:
    created = gemini_api.caches.create(model=MODEL, config=_config())
    assert created.name is not None and created.name.startswith("cachedContents/")
    assert created.model == f"models/{MODEL}"
    assert gemini_api.caches.get(name=created.name).name == created.name
    gemini_api.caches.delete(name=created.name)


def test_bad_input_is_a_client_error(vertex: genai.Client) -> None:
    with pytest.raises(genai.errors.ClientError) as refused:
        vertex.caches.create(model=MODEL, config=_config(ttl="-1s"))
    assert refused.value.code == 400 and "ttl" in (refused.value.message or "")


def test_the_openai_route_uses_the_cache(vertex: genai.Client, live: LiveServer) -> None:
    created = vertex.caches.create(model=MODEL, config=_config())
    assert created.name is not None and created.usage_metadata is not None
    client = openai.OpenAI(base_url=live.url + OPENAPI.replace("v1beta1", "v1"), api_key="static-key")
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Which code opens the blue door?"}],
        max_tokens=16,
        seed=1,
        extra_body={"google": {"cached_content": created.name}},
    )
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    cached = reply.usage.prompt_tokens_details.cached_tokens
    pinned = created.usage_metadata.total_token_count or 0
    assert cached is not None and pinned - CHUNK < cached <= pinned  # reused in whole chunks
    assert reply.usage.prompt_tokens > cached  # the question itself was not cached


def test_cache_resource_validates_against_discovery(live: LiveServer) -> None:
    import httpx

    url = f"{live.url}/v1/projects/{PROJECT}/locations/us-central1/cachedContents"
    headers = {"Authorization": "Bearer static-key"}
    body = {"model": MODEL, "contents": [{"role": "user", "parts": [{"text": MANUAL}]}]}
    created = httpx.post(url, json=body, headers=headers)
    assert created.status_code == 200, created.text
    discovery.validate(created.json(), "GoogleCloudAiplatformV1CachedContent", "v1")
    listed = httpx.get(url, headers=headers)
    discovery.validate(listed.json(), "GoogleCloudAiplatformV1ListCachedContentsResponse", "v1")
    assert httpx.delete(f"{live.url}/v1/{created.json()['name']}", headers=headers).json() == {}


def test_generate_with_the_cache_through_the_sdk(vertex: genai.Client) -> None:
    created = vertex.caches.create(model=MODEL, config=_config())
    assert created.name is not None and created.usage_metadata is not None
    response = vertex.models.generate_content(
        model=MODEL,
        contents="Which code opens the blue door?",
        config=types.GenerateContentConfig(cached_content=created.name, max_output_tokens=16, seed=1),
    )
    assert response.usage_metadata is not None
    pinned = created.usage_metadata.total_token_count or 0
    cached = response.usage_metadata.cached_content_token_count
    assert cached is not None and pinned - CHUNK < cached <= pinned  # reused in whole chunks
