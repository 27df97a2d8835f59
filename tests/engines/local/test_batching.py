"""Continuous batching on the embedded model: sequences decoded together, the same answer for
the same request alone whatever the cache holds, prompt prefixes reused across requests, and
pinned prefixes (the contract cachedContents relies on)."""

from __future__ import annotations

import asyncio
import dataclasses

import msgspec
import pytest

from chatgate.engines.local.batching import CHUNK
from chatgate.engines.local.engine import LocalModel, Pinned
from chatgate.errors import InvalidRequest, NotFound, ResourceExhausted
from chatgate.protocols import gemini as g
from tests.engines.local.conftest import Runner, text_of, user

pytestmark = pytest.mark.model

# A system prompt of a few hundred tokens, as applications share across requests.
RULES = " ".join(
    f"Rule {i}: answer in plain words, name the {topic}, and keep it short."
    for i, topic in enumerate(["animal", "colour", "city", "river", "tree", "planet", "tool", "fruit"] * 3)
)


def ask(question: str, *, system: str = RULES, seed: int = 7, max_tokens: int = 24) -> g.GenerateContentRequest:
    return g.GenerateContentRequest(
        system_instruction=g.Content(parts=[g.Part(text=system)]) if system else None,
        contents=[user(question)],
        generation_config=g.GenerationConfig(temperature=0, seed=seed, max_output_tokens=max_tokens),
    )


def model_of(local: Runner) -> LocalModel:
    return local.engine.model(local.model)


def usage(local: Runner, request: g.GenerateContentRequest) -> tuple[str, g.UsageMetadata]:
    [response] = local.chunks(request)
    assert response.candidates and response.usage_metadata is not None
    return text_of(response.candidates[0]), response.usage_metadata


def test_simultaneous_streams_are_decoded_in_the_same_steps(local: Runner) -> None:
    model = model_of(local)
    assert model.spec.parallel >= 2
    before = model.scheduler.stats.steps

    async def both() -> list[list[g.GenerateContentResponse]]:
        async def one(seed: int) -> list[g.GenerateContentResponse]:
            request = ask("Tell me a very long story.", system="", seed=seed, max_tokens=30)
            return [c async for c in local.engine.generate(local.model, request, stream=True)]

        return await asyncio.gather(one(1), one(2))

    answers = local.loop.run_until_complete(both())
    produced = sum(
        c.usage_metadata.candidates_token_count or 0 for chunks in answers for c in chunks if c.usage_metadata
    )
    assert produced > 0
    # Fewer decodes than tokens: some steps carried a token of each stream.
    assert model.scheduler.stats.widest >= 2
    assert model.scheduler.stats.steps - before < produced


def test_same_request_alone_gives_the_same_answer_whatever_the_cache_holds(local: Runner) -> None:
    stats = model_of(local).scheduler.stats
    system = "Be precise. " + RULES  # a prompt nothing cached begins with
    request = ask("Which animal is the largest? Tell me why.", system=system, max_tokens=40)
    reused = stats.prompt_reused
    first, used = usage(local, request)
    assert stats.prompt_reused == reused  # the first run read its whole prompt: cold
    answers = [first]
    for other in (ask("Name a river.", max_tokens=12), ask("Name a tree.", system=system, max_tokens=12)) * 2:
        # Other requests leave other content in the cache, some sharing this one's prefix.
        local.candidate(other)
        before = stats.prompt_reused
        text, again = usage(local, request)
        answers.append(text)
        # The repeat took its prompt from the cache, all but the chunk holding the last token.
        assert stats.prompt_reused - before >= used.prompt_token_count - 2 * CHUNK  # type: ignore[operator]
        assert again.prompt_token_count == used.prompt_token_count
    assert answers == [first] * 5


def test_a_shared_prefix_is_not_evaluated_again(local: Runner) -> None:
    stats = model_of(local).scheduler.stats
    system = RULES + " Mention a colour."
    _, first = usage(local, ask("Name a fruit.", system=system))
    evaluated, reused = stats.prompt_evaluated, stats.prompt_reused
    _, second = usage(local, ask("Name a tool you like.", system=system))
    assert second.prompt_token_count is not None and second.prompt_token_count > 3 * CHUNK
    took = stats.prompt_reused - reused
    # The system prompt (all its whole chunks) came from the cache; only the rest was read.
    assert took >= second.prompt_token_count - 2 * CHUNK
    assert stats.prompt_evaluated - evaluated == second.prompt_token_count - took
    assert second.cached_content_token_count is None  # no pin involved


def test_a_continued_conversation_reuses_the_earlier_turn(local: Runner) -> None:
    stats = model_of(local).scheduler.stats
    request = ask("Name a planet and a river.", max_tokens=20)
    answer, first = usage(local, request)
    turn = msgspec.structs.replace(
        request,
        contents=[
            *request.contents,
            g.Content(role="model", parts=[g.Part(text=answer)]),
            user("And a tree?"),
        ],
    )
    reused = stats.prompt_reused
    _, second = usage(local, turn)
    assert first.prompt_token_count is not None
    assert stats.prompt_reused - reused >= first.prompt_token_count - 2 * CHUNK


# --- pinned prefixes -------------------------------------------------------------------------

BRIEFING = " ".join(
    f"Fact {i}: the {thing} in room {i} is {colour}."
    for i, (thing, colour) in enumerate(
        [("lamp", "red"), ("chair", "blue"), ("desk", "green"), ("rug", "yellow"), ("door", "white")] * 6
    )
)


def cached(question: str | None = None, *, seed: int = 3) -> g.GenerateContentRequest:
    """The cache's own contents, then (when asked) a question after them."""
    contents = [user(BRIEFING), g.Content(role="model", parts=[g.Part(text="Noted.")])]
    if question is not None:
        contents.append(user(question))
    return g.GenerateContentRequest(
        system_instruction=g.Content(parts=[g.Part(text="You answer questions about the rooms.")]),
        contents=contents,
        generation_config=g.GenerationConfig(temperature=0, seed=seed, max_output_tokens=30),
    )


def pin(local: Runner, request: g.GenerateContentRequest, model: str | None = None) -> Pinned:
    return local.loop.run_until_complete(local.engine.pin(model or local.model, request))


def test_a_pinned_prefix_is_used_and_gives_the_unpinned_answer(local: Runner) -> None:
    question = cached("What colour is the desk in room 2?")
    cold, cold_usage = usage(local, question)  # nothing pinned, nothing of it cached
    assert cold_usage.cached_content_token_count is None
    pinned = pin(local, cached())
    model = model_of(local)
    try:
        assert pinned.model == local.model and pinned.tokens > 3 * CHUNK and pinned.size > 0
        assert model.cache_used == pinned.size
        # Sequences' own caches are dropped: the pin's saved state is what serves.
        local.loop.run_until_complete(_forget_sequences(model))
        warm, warm_usage = usage(local, question)
        taken = warm_usage.cached_content_token_count
        assert taken is not None and pinned.tokens - CHUNK < taken <= pinned.tokens
        assert warm_usage.prompt_token_count == cold_usage.prompt_token_count
        assert warm == cold
    finally:
        local.engine.unpin(pinned)


def test_unpin_frees_its_memory_and_is_idempotent(local: Runner) -> None:
    model = model_of(local)
    pinned = pin(local, cached())
    assert pinned.key in model.pins and model.cache_used >= pinned.size
    local.engine.unpin(pinned)
    local.engine.unpin(pinned)
    assert pinned.key not in model.pins and model.cache_used == 0
    _, after = usage(local, cached("What colour is the rug?"))
    assert after.cached_content_token_count is None


def test_pins_beyond_cache_memory_are_refused(local: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_of(local)
    first = pin(local, cached())
    try:
        monkeypatch.setattr(model, "spec", dataclasses.replace(model.spec, cache_memory=first.size + first.size // 2))
        with pytest.raises(ResourceExhausted) as refused:
            pin(local, cached("A second, longer prefix."))
        assert refused.value.status == 429 and refused.value.code == "cache_memory_exhausted"
        assert model.cache_used == first.size  # nothing kept for the refused one
    finally:
        local.engine.unpin(first)
    assert local.loop.run_until_complete(_idle(local))


def test_pin_refuses_an_unknown_model_and_a_prefix_beyond_the_window(local: Runner) -> None:
    with pytest.raises(NotFound):
        pin(local, cached(), model="no-such-model")
    window = model_of(local).context.size
    huge = g.GenerateContentRequest(contents=[user("word " * (window + 10))])
    with pytest.raises(InvalidRequest) as refused:
        pin(local, huge)
    assert refused.value.param == "messages"


async def _idle(local: Runner) -> bool:
    for _ in range(3000):
        if not local.engine.busy:
            return True
        await asyncio.sleep(0.01)
    return False


async def _forget_sequences(model: LocalModel) -> None:
    """Empty every sequence's cache (between requests: the scheduler is idle, waiting for work
    with its lock released)."""
    scheduler = model.scheduler
    with scheduler._cond:
        # A request's sequence is retired at the scheduler's next turn after its worker left.
        assert scheduler._cond.wait_for(lambda: not scheduler._running, timeout=60)
        for i in range(scheduler.sequences):
            model.context.drop(i)
            scheduler._cached[i], scheduler._clean[i] = [], 0
