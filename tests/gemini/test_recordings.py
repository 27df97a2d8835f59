"""Every recording of real Gemini responses, replayed by the fake server through the engine
and the translators; each result checked against its expectation and OpenAI's schema.

``Ok(finish_reason, content_prefix, calls=[names], usage=(prompt, completion, total))``;
``then=`` is the status of the error that ended a stream after some chunks; ``Err(status)``
is the HTTP status the client gets. Imagen ``:predict`` bodies and ``countTokens`` bodies in
the set are not ``generateContent`` answers: chatgate reports them as a 502.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chatgate.engines.gemini import GeminiEngine
from chatgate.errors import ChatgateError
from tests.gemini import helpers
from tests.gemini.conftest import settings
from tests.gemini.fake import RECORDINGS, FakeGemini


@dataclass(frozen=True)
class Ok:
    finish: str
    content: str | None
    calls: list[str] = field(default_factory=list)
    usage: tuple[int, int, int] | None = None
    then: int | None = None


@dataclass(frozen=True)
class Err:
    status: int


EXPECTED: dict[str, Ok | Err] = {
    "googleai/streaming-failure-image-rejected.txt": Err(400),
    "googleai/streaming-failure-prompt-blocked-safety.txt": Ok("content_filter", None),
    "googleai/streaming-failure-recitation-no-content.txt": Ok("content_filter", "text1text2text3text4text"),
    "googleai/streaming-success-basic-reply-long.txt": Ok("stop", "Okay, let's dive into th"),
    "googleai/streaming-success-basic-reply-short.txt": Ok("stop", "The capital of Wyoming i"),
    "googleai/streaming-success-citations.txt": Ok("stop", "Okay, let's break down q"),
    "googleai/streaming-success-code-execution.txt": Ok("stop", "To find the sum of the f"),
    "googleai/streaming-success-empty-parts.txt": Ok("stop", "Here's a cute cartoon ki"),
    "googleai/streaming-success-finish-message.txt": Ok("stop", "Hello world!"),
    "googleai/streaming-success-no-content-parts.txt": Ok("stop", "I will generate a 3D ren"),
    "googleai/streaming-success-thinking-function-call-thought-summary-signature.txt": Ok(
        "tool_calls", "**Calculating the Days**", calls=["now"]
    ),
    "googleai/streaming-success-thinking-reply-thought-summary.txt": Ok("stop", "**Exploring Sky Color**\n"),
    "googleai/streaming-success-url-context.txt": Ok("stop", "\nThe Google homepage pri"),
    "googleai/unary-failure-api-key.json": Err(400),
    "googleai/unary-failure-api-key.txt": Err(400),
    "googleai/unary-failure-finish-reason-safety.json": Ok(
        "content_filter", "Safety error incoming in", usage=(7, 20, 27)
    ),
    "googleai/unary-failure-finish-reason-safety.txt": Ok(
        "content_filter", "Safety error incoming in", usage=(7, 20, 27)
    ),
    "googleai/unary-failure-generativelanguage-api-not-enabled.json": Err(
        502
    ),  # Google refused chatgate's identity: upstream_auth_failed
    "googleai/unary-failure-only-prompt-feedback.json": Ok("content_filter", None),
    "googleai/unary-failure-unknown-model.json": Err(404),
    "googleai/unary-failure-unknown-model.txt": Err(404),
    "googleai/unary-failure-with-message-no-content.json": Ok("stop", None),
    "googleai/unary-success-basic-reply-long.json": Ok("stop", "Making professional-qual", usage=(9, 1612, 1621)),
    "googleai/unary-success-basic-reply-long.txt": Ok("stop", "Making professional-qual", usage=(9, 1612, 1621)),
    "googleai/unary-success-basic-reply-short.json": Ok("stop", "Google's headquarters, a", usage=(7, 22, 29)),
    "googleai/unary-success-basic-reply-short.txt": Ok("stop", "Google's headquarters, a", usage=(7, 22, 29)),
    "googleai/unary-success-citations.json": Ok("stop", "Okay, let's break down q", usage=(15, 1667, 1682)),
    "googleai/unary-success-citations.txt": Ok("stop", "Okay, let's break down q", usage=(15, 1667, 1682)),
    "googleai/unary-success-code-execution.json": Ok("stop", "\n```python\nprime_numbers", usage=(21, 96, 363)),
    "googleai/unary-success-google-maps-grounding.json": Ok("stop", "Here are a few pizza pla", usage=(9, 288, 443)),
    "googleai/unary-success-google-search-grounding-empty-grounding-chunks.json": Ok(
        "stop", "The current weather in L", usage=(8, 59, 67)
    ),
    "googleai/unary-success-google-search-grounding.json": Ok("stop", "The current weather in L", usage=(8, 60, 68)),
    "googleai/unary-success-thinking-function-call-thought-summary-signature.json": Ok(
        "tool_calls", "**Thinking Through the N", calls=["now"], usage=(38, 8, 547)
    ),
    "googleai/unary-success-thinking-reply-thought-summary.json": Ok(
        "stop", "**Thinking About Google'", usage=(14, 2, 40)
    ),
    "googleai/unary-success-url-context-mixed-validity.json": Ok(
        "stop", "\nThe valid page, https:/", usage=(118, 312, 2437)
    ),
    "googleai/unary-success-url-context.json": Ok("stop", "Berkshire Hathaway Inc.'", usage=(15, 102, 683)),
    "vertexai/streaming-failure-api-key.txt": Err(400),
    "vertexai/streaming-failure-empty-content.txt": Err(502),
    "vertexai/streaming-failure-error-mid-stream.txt": Ok(None, "First Second ", then=499),
    "vertexai/streaming-failure-finish-reason-safety.txt": Ok("content_filter", "<redacted>"),
    "vertexai/streaming-failure-http-error.txt": Err(400),
    "vertexai/streaming-failure-image-rejected.txt": Err(400),
    "vertexai/streaming-failure-invalid-json.txt": Err(502),
    "vertexai/streaming-failure-malformed-content.txt": Err(502),
    "vertexai/streaming-failure-prompt-blocked-safety-with-message.txt": Ok("content_filter", None),
    "vertexai/streaming-failure-prompt-blocked-safety.txt": Ok("content_filter", None),
    "vertexai/streaming-failure-recitation-no-content.txt": Ok("content_filter", "Copyrighted text goes he"),
    "vertexai/streaming-failure-unknown-finish-enum.txt": Ok("stop", "**Cats:**\n\n- **Physical "),
    "vertexai/streaming-failure-unknown-model.txt": Err(404),
    "vertexai/streaming-success-basic-reply-long.txt": Ok("stop", "Okay, let's brew a decen"),
    "vertexai/streaming-success-basic-reply-parts.txt": Ok("stop", "1 2 3 4 5 6 7 8"),
    "vertexai/streaming-success-basic-reply-short.txt": Ok("stop", "Cheyenne"),
    "vertexai/streaming-success-citations.txt": Ok("stop", "1. **Definition:**\nQuant"),
    "vertexai/streaming-success-code-execution.txt": Ok("stop", "To find the sum of the f"),
    "vertexai/streaming-success-empty-text-part.txt": Ok("stop", "1"),
    "vertexai/streaming-success-function-call-short.txt": Ok("tool_calls", None, calls=["getTemperature"]),
    "vertexai/streaming-success-image-invalid-safety-ratings.txt": Ok("stop", None),
    "vertexai/streaming-success-quotes-escaped.txt": Ok("stop", ' Pineapples and "bananas'),
    "vertexai/streaming-success-thinking-reply-thought-summary.txt": Ok("stop", "**Understanding the Core"),
    "vertexai/streaming-success-unknown-safety-enum.txt": Ok("stop", "**Cats:**\n\n- **Physical "),
    "vertexai/streaming-success-url-context.txt": Ok("stop", "The Google homepage prim"),
    "vertexai/streaming-success-utf8.txt": Ok("stop", "秋风瑟瑟，叶落纷纷，\n西风残照，寒霜渐浓。\n枫叶"),
    "vertexai/unary-failure-api-key.json": Err(400),
    "vertexai/unary-failure-context-cache-model-doesnt-match.json": Err(400),
    "vertexai/unary-failure-context-cache-not-found.json": Err(404),
    "vertexai/unary-failure-empty-content.json": Err(502),
    "vertexai/unary-failure-finish-reason-safety-no-content.json": Ok("content_filter", None, usage=(8, 0, 8)),
    "vertexai/unary-failure-finish-reason-safety.json": Ok("content_filter", "<redacted>", usage=(8, 0, 8)),
    "vertexai/unary-failure-firebaseml-api-not-enabled.json": Err(
        502
    ),  # Google refused chatgate's identity: upstream_auth_failed
    "vertexai/unary-failure-firebasevertexai-api-not-enabled.json": Err(
        502
    ),  # Google refused chatgate's identity: upstream_auth_failed
    "vertexai/unary-failure-generate-images-all-filtered.json": Err(502),
    "vertexai/unary-failure-generate-images-base64-some-filtered.json": Err(502),
    "vertexai/unary-failure-generate-images-gcs-some-filtered.json": Err(502),
    "vertexai/unary-failure-generate-images-prompt-blocked.json": Err(400),
    "vertexai/unary-failure-http-error.json": Err(400),
    "vertexai/unary-failure-iam-permission-denied.json": Err(
        502
    ),  # Google refused chatgate's identity: upstream_auth_failed
    "vertexai/unary-failure-image-rejected.json": Err(400),
    "vertexai/unary-failure-invalid-context-cache-id.json": Err(400),
    "vertexai/unary-failure-invalid-location-url-not-found.html": Err(404),
    "vertexai/unary-failure-invalid-response.json": Err(502),
    "vertexai/unary-failure-malformed-content.json": Err(502),
    "vertexai/unary-failure-model-not-found.json": Err(404),
    "vertexai/unary-failure-prompt-blocked-safety-with-message.json": Ok("content_filter", None),
    "vertexai/unary-failure-prompt-blocked-safety.json": Ok("content_filter", None),
    "vertexai/unary-failure-quota-exceeded.json": Err(429),
    "vertexai/unary-failure-unknown-enum-finish-reason.json": Ok("stop", "Some text"),
    "vertexai/unary-failure-unknown-enum-prompt-blocked.json": Ok("content_filter", None),
    "vertexai/unary-failure-unknown-model.json": Err(404),
    "vertexai/unary-failure-unsupported-user-location.json": Err(400),
    "vertexai/unary-success-basic-reply-long.json": Ok("stop", "1. **Use Freshly Ground ", usage=(6, 303, 309)),
    "vertexai/unary-success-basic-reply-short.json": Ok("stop", "Mountain View, Californi", usage=(6, 7, 13)),
    "vertexai/unary-success-basic-response-long-usage-metadata.json": Ok(
        "stop", "Here is a description of", usage=(1837, 76, 1913)
    ),
    "vertexai/unary-success-citations-nolicense.json": Ok("stop", "Some information cited f", usage=(11, 135, 146)),
    "vertexai/unary-success-citations.json": Ok("stop", "Some information cited f", usage=(15, 253, 268)),
    "vertexai/unary-success-code-execution.json": Ok("stop", "To find the sum of the f", usage=(20, 192, 775)),
    "vertexai/unary-success-constraint-decoding-json.json": Ok("stop", '[\n  {\n    "name": "Fuji '),
    "vertexai/unary-success-detailed-token-response.json": Err(502),
    "vertexai/unary-success-empty-part.json": Ok("stop", "I can certainly help you", usage=(33, 299, 332)),
    "vertexai/unary-success-empty-text-part.json": Ok("stop", "", usage=(8, 0, 8)),
    "vertexai/unary-success-function-call-complex-json-literal.json": Ok(
        "tool_calls", None, calls=["functionName"], usage=(774, 4176, 4950)
    ),
    "vertexai/unary-success-function-call-different-parallel-calls.json": Ok(
        "tool_calls", None, calls=["sum", "multiply", "subtract"]
    ),
    "vertexai/unary-success-function-call-empty-arguments.json": Ok("tool_calls", None, calls=["current_time"]),
    "vertexai/unary-success-function-call-json-literal.json": Ok(
        "tool_calls", None, calls=["functionName"], usage=(774, 4176, 4950)
    ),
    "vertexai/unary-success-function-call-mixed-content.json": Ok(
        "tool_calls", "The sum of [1, 2,3] is", calls=["sum", "sum"]
    ),
    "vertexai/unary-success-function-call-no-arguments.json": Ok("tool_calls", None, calls=["current_time"]),
    "vertexai/unary-success-function-call-null.json": Ok(
        "tool_calls", None, calls=["functionName"], usage=(774, 4176, 4950)
    ),
    "vertexai/unary-success-function-call-parallel-calls.json": Ok("tool_calls", None, calls=["sum", "sum", "sum"]),
    "vertexai/unary-success-function-call-with-arguments.json": Ok("tool_calls", None, calls=["sum"]),
    "vertexai/unary-success-generate-images-base64.json": Err(502),
    "vertexai/unary-success-generate-images-gcs.json": Err(502),
    "vertexai/unary-success-generate-images-safety_info.json": Err(502),
    "vertexai/unary-success-google-maps-grounding.json": Ok("stop", "Here are some pizza rest", usage=(8, 1054, 1062)),
    "vertexai/unary-success-google-search-grounding.json": Ok("stop", "The current weather in L", usage=(8, 60, 68)),
    "vertexai/unary-success-image-invalid-safety-ratings.json": Ok("stop", None, usage=(15, 258, 273)),
    "vertexai/unary-success-implicit-caching.json": Ok("stop", "Red Riding Hood is looki", usage=(12013, 15, 12101)),
    "vertexai/unary-success-including-severity.json": Ok("stop", "## One Thousand and One ", usage=(11, 592, 603)),
    "vertexai/unary-success-missing-safety-ratings.json": Ok("stop", "This is the generated co"),
    "vertexai/unary-success-no-billable-characters.json": Err(502),
    "vertexai/unary-success-partial-usage-metadata.json": Ok("stop", "Mountain View, Californi", usage=(6, 0, 6)),
    "vertexai/unary-success-quote-reply.json": Ok("stop", "Google's mission is to \""),
    "vertexai/unary-success-thinking-reply-thought-summary.json": Ok(
        "stop", "Right, someone needs the", usage=(13, 2, 54)
    ),
    "vertexai/unary-success-total-tokens.json": Err(502),
    "vertexai/unary-success-unknown-enum-safety-ratings.json": Ok("stop", "Some text"),
    "vertexai/unary-success-url-context-missing-retrievedurl.json": Ok(
        "stop", "I attempted to access th", usage=(175, 93, 564)
    ),
    "vertexai/unary-success-url-context-mixed-validity.json": Ok(
        "stop", "The `browse` tool output", usage=(116, 446, 918)
    ),
    "vertexai/unary-success-url-context.json": Ok("stop", "The Berkshire Hathaway I", usage=(13, 98, 181)),
    "vertexai/unary-success-usage-metadata.json": Ok("stop", "Mountain View, Californi", usage=(6, 357, 363)),
}


def _names() -> list[str]:
    return sorted(f"{p.parent.name}/{p.name}" for p in RECORDINGS.glob("*/*") if p.parent.name != "schema")


def test_every_recording_has_an_expectation() -> None:
    assert sorted(EXPECTED) == _names()


@pytest.mark.parametrize("name", _names())
async def test_recording(name: str, fake: FakeGemini) -> None:
    expected = EXPECTED[name]
    engine = GeminiEngine(settings(fake, max_retries=0))
    streaming = name.split("/")[1].startswith("streaming")
    fake.replay(name)
    request = helpers.openai_request(stream=streaming)
    try:
        if streaming:
            chunks, error = await helpers.stream(engine, request)
            if isinstance(expected, Err):
                assert error is not None and not chunks
                assert error.status == expected.status
                return
            assert (error.status if error else None) == expected.then
            got = helpers.assemble(chunks)
            content, finish, calls = got["content"], got["finish_reason"], [c["name"] for c in got["tool_calls"]]
            if expected.then is None:
                assert got["roles"] == 1
            usage = None
        else:
            try:
                body = await helpers.complete(engine, request)
            except ChatgateError as exc:
                assert isinstance(expected, Err), f"unexpected error {exc.status}: {exc.message}"
                assert exc.status == expected.status
                assert exc.message  # Google's message kept, or the HTTP status said
                return
            assert isinstance(expected, Ok)
            choice = body["choices"][0]
            content, finish = choice["message"]["content"], choice["finish_reason"]
            calls = [c["function"]["name"] for c in choice["message"].get("tool_calls", [])]
            u = body.get("usage")
            usage = (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) if u else None
        assert isinstance(expected, Ok)
        assert finish == expected.finish
        if expected.content is None:
            assert content is None
        else:
            assert content is not None and content.startswith(expected.content)
        assert calls == expected.calls
        if not streaming:
            assert usage == expected.usage
    finally:
        await engine.aclose()
    path = fake.seen[0].path
    assert path.endswith(":streamGenerateContent" if streaming else ":generateContent")
    assert (fake.seen[0].query == "alt=sse") is streaming
