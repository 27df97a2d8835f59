"""Structured output and tool calling on the embedded model, through the clients users
run: the openai SDK (``parse``, ``stream``, ``pydantic_function_tool``), langchain-openai
and instructor, against a live chatgate. Every answer must parse into the client's model,
whatever the seed: the grammar guarantees it, not the 135M model's skill."""

from __future__ import annotations

import json
from enum import Enum
from typing import Literal

import openai
import pytest
from pydantic import BaseModel, Field

from tests.conftest import MODEL
from tests.live import LiveServer
from tests.openapi import validate_chunk, validate_completion

pytestmark = pytest.mark.model


class Genre(str, Enum):
    fiction = "fiction"
    science = "science"
    history = "history"


class Author(BaseModel):
    name: str = Field(max_length=30)
    born: str = Field(description="birth date, YYYY-MM-DD", pattern=r"^\d{4}-\d{2}-\d{2}$")


class Book(BaseModel):
    """A non-trivial model: nested objects, a list, an enum, an optional field, a Literal."""

    title: str = Field(max_length=40)
    genre: Genre
    authors: list[Author] = Field(min_length=1, max_length=2)
    format: Literal["paperback", "hardcover", "ebook"]
    pages: int | None = Field(default=None, ge=1, le=2000)


class GetWeather(BaseModel):
    """Get the weather forecast for a city."""

    city: str = Field(max_length=30)
    unit: Literal["celsius", "fahrenheit"]
    days: int = Field(ge=1, le=7)


BOOK_PROMPT = [{"role": "user", "content": "Describe a well-known book as JSON."}]
WEATHER_PROMPT = [{"role": "user", "content": "What will the weather be in Lisbon for the next three days?"}]


@pytest.fixture
def client(live: LiveServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key=token, max_retries=0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parse_returns_the_pydantic_model(client: openai.OpenAI, seed: int) -> None:
    completion = client.chat.completions.parse(
        model=MODEL, messages=BOOK_PROMPT, response_format=Book, seed=seed, max_tokens=250
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, Book)
    assert 1 <= len(choice.message.parsed.authors) <= 2


def test_beta_parse_still_works(client: openai.OpenAI) -> None:
    completion = client.beta.chat.completions.parse(
        model=MODEL, messages=BOOK_PROMPT, response_format=Book, seed=4, max_tokens=250
    )
    assert isinstance(completion.choices[0].message.parsed, Book)


def test_json_object_is_a_json_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give a JSON object with a cat's name and age."}],
        response_format={"type": "json_object"},
        seed=1,
        max_tokens=80,
    )
    validate_completion(completion.model_dump(exclude_unset=True))
    if completion.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


def test_stream_with_pydantic_format_streams_json_and_parses(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL, messages=BOOK_PROMPT, response_format=Book, seed=5, max_tokens=250
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 5  # the JSON came as it was written
    assert "".join(deltas) == final.choices[0].message.content
    assert isinstance(final.choices[0].message.parsed, Book)


@pytest.mark.parametrize("seed", [1, 2])
def test_pydantic_function_tool_required(client: openai.OpenAI, seed: int) -> None:
    completion = client.chat.completions.parse(
        model=MODEL,
        messages=WEATHER_PROMPT,
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="required",
        seed=seed,
        max_tokens=150,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert calls and len({c.id for c in calls}) == len(calls)
    for call in calls:
        assert call.id.startswith("function-call-")
        assert isinstance(call.function.parsed_arguments, GetWeather)


def test_named_tool_choice_and_no_parallel_calls(client: openai.OpenAI) -> None:
    tools = [
        openai.pydantic_function_tool(GetWeather),
        openai.pydantic_function_tool(Author, name="find_author", description="Find an author."),
    ]
    completion = client.chat.completions.create(
        model=MODEL,
        messages=WEATHER_PROMPT,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "find_author"}},
        seed=1,
        max_tokens=120,
    )
    validate_completion(completion.model_dump(exclude_unset=True))
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = completion.choices[0].message.tool_calls or []
    assert calls and {c.function.name for c in calls} == {"find_author"}
    for call in calls:
        Author.model_validate_json(call.function.arguments)


def test_tool_choice_none_never_calls(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=WEATHER_PROMPT,
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="none",
        seed=1,
        max_tokens=20,
    )
    assert not completion.choices[0].message.tool_calls
    assert completion.choices[0].finish_reason in ("stop", "length")


def test_streamed_tool_calls_assemble_in_the_stream_helper(client: openai.OpenAI) -> None:
    raw = list(
        client.chat.completions.create(
            model=MODEL,
            messages=WEATHER_PROMPT,
            tools=[openai.pydantic_function_tool(GetWeather)],
            tool_choice="required",
            seed=2,
            max_tokens=150,
            stream=True,
        )
    )
    for chunk in raw:
        validate_chunk(chunk.model_dump(exclude_unset=True))
    deltas = [d for c in raw for ch in c.choices for d in ch.delta.tool_calls or []]
    assert len(deltas) > 2  # arguments came as they were written
    for index in {d.index for d in deltas}:
        mine = [d for d in deltas if d.index == index]
        assert mine[0].id and mine[0].type == "function" and mine[0].function.name == "GetWeather"
        assert all(d.id is None and d.type is None and not (d.function and d.function.name) for d in mine[1:])
    with client.chat.completions.stream(
        model=MODEL,
        messages=WEATHER_PROMPT,
        seed=2,
        max_tokens=150,
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="required",
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    calls = final.choices[0].message.tool_calls or []
    assert calls and all(isinstance(c.function.parsed_arguments, GetWeather) for c in calls)
    assert [c.function.arguments for c in calls] == [
        "".join(d.function.arguments or "" for d in deltas if d.index == i and d.function) for i in range(len(calls))
    ]


def test_full_tool_loop(client: openai.OpenAI) -> None:
    tools = [openai.pydantic_function_tool(GetWeather)]
    first = client.chat.completions.create(
        model=MODEL,
        messages=WEATHER_PROMPT,
        tools=tools,
        tool_choice="required",
        seed=1,
        max_tokens=150,
        parallel_tool_calls=False,
    )
    message = first.choices[0].message
    assert message.tool_calls
    history = [*WEATHER_PROMPT, message.model_dump(exclude_none=True)]
    for call in message.tool_calls:
        history.append(
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"forecast": "sunny", "celsius": 24})}
        )
    second = client.chat.completions.create(model=MODEL, messages=history, tools=tools, seed=1, max_tokens=30)
    validate_completion(second.model_dump(exclude_unset=True))
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")


# --- langchain-openai -------------------------------------------------------------------------


@pytest.fixture
def chat_model(live: LiveServer, token: str):  # type: ignore[no-untyped-def]
    langchain_openai = pytest.importorskip("langchain_openai")
    return langchain_openai.ChatOpenAI(
        base_url=live.url + "/v1", api_key=token, model=MODEL, max_retries=0, max_tokens=250, seed=1
    )


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_with_structured_output(chat_model, method: str) -> None:  # type: ignore[no-untyped-def]
    book = chat_model.with_structured_output(Book, method=method).invoke("Describe a well-known book.")
    assert isinstance(book, Book)


def test_langchain_bind_tools_any(chat_model) -> None:  # type: ignore[no-untyped-def]
    answer = chat_model.bind_tools([GetWeather], tool_choice="any").invoke(
        "What will the weather be in Lisbon for the next three days?"
    )
    assert answer.tool_calls and answer.tool_calls[0]["name"] == "GetWeather"
    GetWeather.model_validate(answer.tool_calls[0]["args"])


# --- instructor -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
def test_instructor(client: openai.OpenAI, mode: str) -> None:
    instructor = pytest.importorskip("instructor")
    patched = instructor.from_openai(client, mode=getattr(instructor.Mode, mode))
    book = patched.chat.completions.create(
        model=MODEL, messages=BOOK_PROMPT, response_model=Book, max_retries=0, seed=1, max_tokens=250
    )
    assert isinstance(book, Book)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parallel_tool_calls_false_gives_one_call(client: openai.OpenAI, seed: int) -> None:
    prompt = [{"role": "user", "content": "What is the weather in Paris, in London and in Rome?"}]
    completion = client.chat.completions.create(
        model=MODEL,
        messages=prompt,
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="required",
        parallel_tool_calls=False,
        seed=seed,
        max_tokens=150,
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    assert len(completion.choices[0].message.tool_calls or []) == 1
