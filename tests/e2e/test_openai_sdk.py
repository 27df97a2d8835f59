"""The official openai SDK, unchanged, against a live chatgate serving the embedded model."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL, OPENAPI, PROJECT
from tests.live import LiveServer
from tests.openapi import validate_chunk, validate_completion

pytestmark = pytest.mark.model

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture(params=["openapi", "alias"])
def client(request: pytest.FixtureRequest, live: LiveServer, token: str) -> openai.OpenAI:
    base = live.url + (OPENAPI if request.param == "openapi" else "/v1")
    return openai.OpenAI(base_url=base, api_key=token, max_retries=0)


def test_create_answers_with_model_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12, temperature=0)
    validate_completion(completion.model_dump(exclude_unset=True))
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 12
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_stream_chunks_assemble_into_text(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12, stream=True))
    for chunk in chunks:
        validate_chunk(chunk.model_dump(exclude_unset=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert all(c.usage is None for c in chunks)  # no include_usage, no usage


def test_stream_helper_gives_final_completion(client: openai.OpenAI) -> None:
    # Room for the one sentence asked for: the helper raises on "length", whatever the sentence.
    with client.chat.completions.stream(model=MODEL, messages=HELLO, max_tokens=60, temperature=0) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content
    assert final.choices[0].finish_reason == "stop"


def test_include_usage_adds_a_last_chunk_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=8, stream=True, stream_options={"include_usage": True}
        )
    )
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens >= 1
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in body)


def test_n_gives_distinct_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6, n=2, seed=1)
    validate_completion(completion.model_dump(exclude_unset=True))
    assert [c.index for c in completion.choices] == [0, 1]
    stream = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6, n=2, stream=True))
    finished = [ch.index for c in stream for ch in c.choices if ch.finish_reason]
    assert sorted(finished) == [0, 1]
    roles = [ch.index for c in stream for ch in c.choices if ch.delta.role]
    assert sorted(roles) == [0, 1]


def test_same_seed_same_text(client: openai.OpenAI) -> None:
    def ask(seed: int, temperature: float) -> str:
        c = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=16, seed=seed, temperature=temperature
        )
        return c.choices[0].message.content or ""

    assert ask(7, 0) == ask(7, 0)
    assert ask(7, 1.0) == ask(7, 1.0)  # seeded sampling is reproducible too


def test_stop_sequence_cuts_the_text_before_it(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "List five fruits, separated by commas."}]
    full = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=30, temperature=0, seed=3)
    text = full.choices[0].message.content or ""
    words = text.split()
    assert len(words) >= 4, text
    stop = words[len(words) // 2]
    cut = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=30, temperature=0, seed=3, stop=[stop]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]
    streamed = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=30, temperature=0, seed=3, stop=stop, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == text[: text.index(stop)]


def test_max_tokens_gives_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Write a long story about a dragon."}], max_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_system_and_multi_turn_history(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        max_tokens=8,
        messages=[
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "developer", "content": "Be polite."},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ],
    )
    assert completion.choices[0].message.content


def test_models_list_includes_embedded_model(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids


def test_endpoint_route_serves_local_model(live: LiveServer, token: str) -> None:
    base = f"{live.url}/v1/projects/{PROJECT}/locations/us-central1/endpoints/local"
    client = openai.OpenAI(base_url=base, api_key=token, max_retries=0)
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=5)
    assert completion.choices[0].message.content
    assert [m.id for m in client.models.list()] == [MODEL]


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert err.value.body["param"] == "model"  # type: ignore[index]
    assert MODEL in err.value.body["message"]  # type: ignore[index]


def test_google_model_without_gemini_says_how_to_configure(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="google/gemini-2.5-flash", messages=HELLO)
    message = err.value.body["message"]  # type: ignore[index]
    assert "gemini" in message.lower() and "api_key" in message and MODEL in message


def test_local_fallback_answers_for_google_models(tmp_path) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, auth={"enabled": False}, gemini={"local_fallback": MODEL})
    with LiveServer(settings) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="google/gemini-2.5-flash", messages=HELLO, max_tokens=4
        )
        completion = raw.parse()
    assert completion.model == "google/gemini-2.5-flash"
    assert raw.headers["x-chatgate-model"] == MODEL  # who really answered
    assert completion.choices[0].message.content
