"""What the browser tests do on the page, in the page's own terms."""

from __future__ import annotations

import os
import stat as st
from pathlib import Path
from typing import Any


def open_page(page: Any, url: str, key: str | None = None) -> None:
    """Load the playground (through ``/``) and, when given, enter the key the page asks for."""
    page.goto(url + "/")
    if key is not None:
        wait_state(page, "need-key")
        page.fill("#key", key)
        page.click("#auth button:text('Use')")
    wait_state(page, "ready")


def send(page: Any, text: str) -> None:
    """Type a message, send it and wait until the answer has finished."""
    page.fill("#prompt", text)
    page.click("#send")
    wait_ready(page)


def wait_state(page: Any, state: str) -> None:
    """Wait for the page's state (``loading``, ``need-key``, ``ready``, ``busy``). Selectors,
    not ``wait_for_function``: that evaluates a string, which the page's CSP forbids."""
    page.locator(f'body[data-state="{state}"]').wait_for(state="attached")


def wait_ready(page: Any) -> None:
    """Sending sets the state to ``busy`` synchronously, so ``ready`` means the answer ended."""
    wait_state(page, "ready")


def token_shell(tmp_path: Path, token: str) -> dict[str, str]:
    """The environment of a user's shell where ``chatgate token`` prints ``token``: what the
    copied code runs in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "chatgate"
    shim.write_text(f"#!/bin/sh\necho {token}\n")
    shim.chmod(shim.stat().st_mode | st.S_IEXEC)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def stat(page: Any, name: str) -> str:
    return str(page.locator(f'#stats [data-stat="{name}"]').inner_text())


def last_answer(page: Any) -> Any:
    return page.locator("#messages li.assistant").last
