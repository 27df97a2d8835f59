"""The page and credentials, in a real browser, model-free: it asks for a key when the server
needs one, shows a refusal as the API returned it, and keeps the key for the tab only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatgate.engines.local.engine import LocalEngine
from tests.browser.helpers import open_page, wait_state
from tests.conftest import make_settings
from tests.live import LiveServer

KEY = "static-key-for-the-page"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("state"), auth={"api_keys": [KEY]})
    with LiveServer(settings, local=LocalEngine([])) as server:
        yield server


def test_a_bad_token_shows_the_api_error_then_a_good_key_is_kept_for_the_tab(page: Any, guarded: LiveServer) -> None:
    page.goto(guarded.url + "/")
    wait_state(page, "need-key")
    assert page.locator("#auth").is_visible()
    assert "HTTP 401" in page.locator("#error-title").inner_text()

    page.fill("#key", "not.a.token")
    page.click("#auth button:text('Use')")
    page.locator("#key-status:text('the key was refused')").wait_for()
    shown = json.loads(page.locator("#error-body").inner_text())
    assert shown["error"]["type"] and shown["error"]["message"]
    assert page.locator("#error-title").inner_text().startswith("HTTP 401: ")
    assert shown["error"]["message"] in page.locator("#error-title").inner_text()

    page.fill("#key", KEY)
    page.click("#auth button:text('Use')")
    wait_state(page, "ready")
    assert page.locator("#error").is_hidden()
    assert page.evaluate("sessionStorage.getItem('chatgate.key')") == KEY
    assert page.evaluate("localStorage.length") == 0
    assert KEY not in page.content()  # in no attribute or text of the page
    # A new tab of the same browser context starts with no key: sessionStorage is per tab.
    other = page.context.new_page()
    other.goto(guarded.url + "/")
    wait_state(other, "need-key")
    other.close()


def test_with_auth_off_the_page_asks_for_no_key(page: Any, tmp_path: Path) -> None:
    with LiveServer(make_settings(tmp_path, auth={"enabled": False}), local=LocalEngine([])) as server:
        open_page(page, f"http://localhost:{server.port}")
        assert page.locator("body").get_attribute("data-state") == "ready"
        assert page.locator("#auth").is_hidden()
        assert page.locator("#error").is_hidden()
