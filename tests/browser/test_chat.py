"""The playground against a live chatgate with the real embedded model, in a real browser:
pick the model, stream a reply, JSON mode, a forced tool call, and the copied code run as is."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.browser.helpers import last_answer, open_page, send, stat, token_shell, wait_ready
from tests.conftest import MODEL
from tests.live import LiveServer

pytestmark = pytest.mark.model

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 30}, "population": {"type": "integer", "minimum": 0}},
    "required": ["city", "population"],
}
WATCH_STREAM = """() => {
  window.seen = [];
  new MutationObserver(() => {
    const answer = document.querySelector('#messages li.assistant:last-child .content');
    if (answer && window.seen.at(-1) !== answer.textContent) window.seen.push(answer.textContent);
  }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
}"""


def ready(page: Any, live: LiveServer, token: str, *, max_tokens: int = 24) -> None:
    open_page(page, live.url, key=token)
    page.select_option("#model", label=MODEL)
    page.fill("#temperature", "0")
    page.fill("#seed", "7")
    page.fill("#max-tokens", str(max_tokens))


def test_picks_the_model_and_streams_a_reply(page: Any, live: LiveServer, token: str) -> None:
    ready(page, live, token)
    assert MODEL in page.locator("#model option").all_inner_texts()
    page.evaluate(WATCH_STREAM)
    send(page, "Tell me about the sea.")

    text = last_answer(page).locator(".content").inner_text()
    seen = [s for s in page.evaluate("window.seen") if s]
    assert text and seen[-1].strip() == text.strip()
    # The text arrived in pieces, each extending the last: streamed, not shown at the end.
    assert len(seen) >= 3, seen
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen)), seen
    assert stat(page, "finish_reason") in ("stop", "length")
    prompt, completion, total = (
        int(n) for n in stat(page, "usage").replace("prompt +", "").replace("completion =", "").split()
    )
    assert prompt > 0 and 0 < completion <= 24 and total == prompt + completion
    assert stat(page, "time to first token").endswith(" ms")
    assert float(stat(page, "tokens/s")) > 0
    assert page.locator("#error").is_hidden()


def test_json_schema_answer_is_pretty_printed_and_checked(page: Any, live: LiveServer, token: str) -> None:
    ready(page, live, token, max_tokens=200)
    page.select_option("#format", "json_schema")
    page.fill("#schema", json.dumps(SCHEMA))
    send(page, "Name a city and its population.")

    assert stat(page, "finish_reason") == "stop"
    answer = last_answer(page)
    shown = answer.locator(".content").inner_text()
    value = json.loads(shown)
    jsonschema.validate(value, SCHEMA)
    assert shown.strip() == json.dumps(value, indent=2, ensure_ascii=False)  # pretty-printed
    check = answer.locator(".check")
    assert check.get_attribute("data-valid") == "true"
    assert check.inner_text() == "valid JSON, matches the schema"


def test_a_forced_tool_call_is_shown_and_its_result_continues(page: Any, live: LiveServer, token: str) -> None:
    ready(page, live, token, max_tokens=64)
    page.click("#tools-example")
    page.select_option("#tool-choice", "required")
    send(page, "What is the weather in Paris?")

    assert stat(page, "finish_reason") == "tool_calls"
    call = last_answer(page).locator(".tool-call").first
    assert call.locator(".name").inner_text() == "get_weather"
    arguments = json.loads(call.locator(".arguments").inner_text())
    assert isinstance(arguments["city"], str)

    # The user types the result; the conversation goes on with a tool message.
    page.select_option("#tool-choice", "none")
    page.fill("#max-tokens", "12")
    page.locator(".tool-results textarea").first.fill("18 degrees, sunny")
    page.click(".tool-results button")
    wait_ready(page)
    assert page.locator("#messages li.tool .content").inner_text().endswith(": 18 degrees, sunny")
    assert stat(page, "finish_reason") in ("stop", "length")
    assert last_answer(page).locator(".content").inner_text()
    page.click("#code summary")
    snippet = page.locator("#snippet").inner_text()
    assert '"role": "tool"' in snippet and '"tool_call_id": "function-call-' in snippet


def test_an_endpoint_added_by_id_answers_at_its_own_url(page: Any, live: LiveServer, token: str) -> None:
    ready(page, live, token, max_tokens=4)
    page.fill("#target-name", "local")  # the default configuration's endpoint
    page.click("#add-target button")
    # The server's listing may already hold this option: the add is done when its field is
    # emptied, in the same step as the pick.
    page.locator("#target-name:placeholder-shown").wait_for(state="attached")
    assert page.locator("#model").input_value() == f"local:{MODEL}"
    send(page, "Hi")
    assert stat(page, "finish_reason") in ("stop", "length") and page.locator("#error").is_hidden()
    page.click("#code summary")
    assert (
        "/v1/projects/default/locations/us-central1/endpoints/local/chat/completions"
        in page.locator("#snippet").inner_text()
    )


def test_an_endpoint_from_the_listing_streams_at_its_own_url_and_its_code_runs(
    page: Any, live: LiveServer, token: str, tmp_path: Path
) -> None:
    ready(page, live, token)
    # The default configuration's endpoint, listed by the server: nothing to add by hand.
    entry = page.locator(f'#model optgroup[label="Endpoints"] option[value="local:{MODEL}"]')
    assert entry.inner_text() == f"local: {MODEL}"
    page.select_option("#model", f"local:{MODEL}")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.evaluate(WATCH_STREAM)
    send(page, "Tell me about the sea.")

    assert posts == [f"{live.url}/v1/projects/default/locations/us-central1/endpoints/local/chat/completions"]
    seen = [s for s in page.evaluate("window.seen") if s]
    assert len(seen) >= 3, seen  # streamed: the text grew in pieces
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen)), seen
    assert stat(page, "finish_reason") in ("stop", "length") and page.locator("#error").is_hidden()

    page.click("#code summary")
    assert page.locator("[data-lang=genai]").is_hidden()  # Gemini's own API has no endpoints
    page.click("[data-lang=python]")
    python = page.locator("#snippet").inner_text()
    assert 'base_url="' + live.url + '/v1/projects/default/locations/us-central1/endpoints/local"' in python
    done = subprocess.run(
        [sys.executable, "-c", python],
        env=token_shell(tmp_path, token),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_copied_curl_and_python_run_as_they_are(page: Any, live: LiveServer, token: str, tmp_path: Path) -> None:
    ready(page, live, token, max_tokens=16)
    page.fill("#system", "You answer in one short sentence.")
    page.fill("#stop", "\\n\\n\nEND")  # two lines: a blank line (escaped), END
    send(page, "Say hello.")
    page.click("#code summary")
    curl = page.locator("#snippet").inner_text()
    page.click("[data-lang=python]")
    python = page.locator("#snippet").inner_text()
    for code in (curl, python):
        assert "/v1/projects/default/locations/us-central1/endpoints/openapi" in code
        assert token not in code  # the key stays in the tab; the code mints its own
    # `chatgate token` as a user's shell has it, minting for this test server's secret.
    env = token_shell(tmp_path, token)

    done = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    sent = json.loads(curl.split("<<'EOF'\n", 1)[1].rsplit("\nEOF", 1)[0])
    assert sent["stop"] == ["\n\n", "END"] and sent["max_tokens"] == 16
    reply = json.loads(done.stdout)
    assert reply["object"] == "chat.completion" and reply["model"] == MODEL
    assert reply["usage"]["completion_tokens"] <= 16

    done = subprocess.run(
        [sys.executable, "-c", python], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
