"""The local engine decides on llama.cpp's extra buffer types before serving, with the real model.

A child that crashes on purpose (a real SIGSEGV, as llama.cpp's AMX path gives on a machine that
advertises AMX but does not allow it) leads to serving without them; the real probe child leads
to serving with them where llama.cpp decodes with them on this machine, without them where it
crashes; the cache spares the next start its probe."""

from __future__ import annotations

import asyncio
import functools
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from chatgate.engines.local.engine import LocalEngine
from chatgate.engines.local.models import EMBEDDED_PACKAGE, package_gguf, specs
from chatgate.engines.local.probe import Probe
from chatgate.protocols import gemini as g
from tests.conftest import MODEL, make_settings

pytestmark = pytest.mark.model

SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]
HELLO = g.GenerateContentRequest(
    contents=[g.Content(role="user", parts=[g.Part(text="Say hello.")])],
    generation_config=g.GenerationConfig(max_output_tokens=8, seed=1),
)


@functools.cache
def extra_buffers_work() -> bool:
    """Whether llama.cpp decodes with its extra buffer types on this machine, found apart from
    ``Probe``'s verdicts and cache: its child program, run here, dies if not."""
    child = [sys.executable, "-m", "chatgate.engines.local.probe", str(package_gguf(EMBEDDED_PACKAGE))]
    done = subprocess.run(child, capture_output=True, timeout=300)
    assert done.returncode <= 0, done.stderr[-2000:]  # a signal, or none: an exception is a test failure
    return done.returncode == 0


def serve(tmp_path: Path, probe: Probe, **local: object) -> tuple[bool, str]:
    """Start an engine on the embedded model and answer one request: (whether llama.cpp loaded
    the model with extra buffer types, as its own parameters say; the answer's text)."""
    [spec] = [s for s in specs(make_settings(tmp_path, local={"parallel": 1, **local})) if s.name == MODEL]
    engine = LocalEngine([spec], probe=probe)
    model = engine.model(MODEL)

    async def run() -> tuple[bool, str]:
        await engine.start()
        try:
            loaded = model.context.extra_buffers
            assert model.verdict is not None and model.verdict.extra_buffers is loaded
            [response] = [r async for r in engine.generate(MODEL, HELLO, stream=False)]
            assert response.candidates and response.candidates[0].content
            return loaded, "".join(p.text or "" for p in response.candidates[0].content.parts)
        finally:
            await engine.aclose()

    return asyncio.run(run())


def test_a_crashing_probe_serves_without_extra_buffers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe(tmp_path, command=SEGFAULT)
    with caplog.at_level(logging.WARNING, "chatgate.local"):
        used, text = serve(tmp_path, probe)
    assert probe.runs == 1
    assert used is False and text  # served, without them
    [warning] = [r.getMessage() for r in caplog.records if "extra CPU buffer types" in r.getMessage()]
    assert "SIGSEGV" in warning and MODEL in warning
    # The next start reads the verdict: no child runs, and the model is still served without them.
    again = Probe(tmp_path)
    assert serve(tmp_path, again)[0] is False and again.runs == 0


def test_the_real_probe_serves_with_them_where_they_work(tmp_path: Path) -> None:
    probe = Probe(tmp_path)  # the real child: loads the model with them and decodes
    used, text = serve(tmp_path, probe)
    assert probe.runs == 1 and used is extra_buffers_work() and text
    # The next start reads the verdict: a probe that would crash is not run.
    again = Probe(tmp_path, command=SEGFAULT)
    assert serve(tmp_path, again)[0] is used and again.runs == 0


@pytest.mark.parametrize("mode", ["on", "off"])
def test_on_and_off_load_as_told_without_a_probe(tmp_path: Path, mode: str) -> None:
    if mode == "on" and not extra_buffers_work():
        pytest.skip("llama.cpp crashes with its extra buffer types on this CPU (what `on` asks for)")
    probe = Probe(tmp_path, command=SEGFAULT)
    assert serve(tmp_path, probe, extra_buffers=mode)[0] is (mode == "on")
    assert probe.runs == 0
