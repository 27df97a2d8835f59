"""The extra-buffer-types probe's decisions and its cache, with stand-in child programs (no model).

The real child, on the real model, is in tests/engines/local/test_probe.py."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from chatgate.engines.local.models import specs
from chatgate.engines.local.probe import CACHE_FILE, Probe
from tests.conftest import make_settings

SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]  # dies of SIGSEGV, as llama.cpp on AMX
HEALTHY = [sys.executable, "-c", "pass"]
FAILING = [sys.executable, "-c", "raise SystemExit('cannot read the model file')"]


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF stand-in")
    return path


def test_a_crashing_child_means_off_with_a_warning_and_a_cached_verdict(
    tmp_path: Path, gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe(tmp_path / "state", command=SEGFAULT)
    with caplog.at_level(logging.WARNING, "chatgate.local"):
        verdict = probe.verdict("m", gguf)
    assert not verdict.extra_buffers and not verdict.cached
    assert "SIGSEGV" in verdict.reason
    [warning] = caplog.records
    message = warning.getMessage()
    assert "model m" in message and "without llama.cpp's extra CPU buffer types" in message
    assert "SIGSEGV" in message and "slower" in message  # what happened, what it costs
    assert str(tmp_path / "state" / CACHE_FILE) in message  # and how to probe again
    cached = json.loads((tmp_path / "state" / CACHE_FILE).read_text())
    assert cached["models"][str(gguf.resolve())]["extra_buffers"] is False


def test_the_second_start_reads_the_cache_and_runs_no_child(
    tmp_path: Path, gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Probe(tmp_path, command=SEGFAULT).verdict("m", gguf)
    caplog.clear()
    again = Probe(tmp_path, command=HEALTHY)  # a child now would say "on"
    with caplog.at_level(logging.WARNING, "chatgate.local"):
        verdict = again.verdict("m", gguf)
    assert again.runs == 0
    assert not verdict.extra_buffers and verdict.cached
    assert len(caplog.records) == 1  # every start says it serves without them


def test_a_healthy_child_means_on_once_per_model_file(
    tmp_path: Path, gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe(tmp_path, command=HEALTHY)
    with caplog.at_level(logging.WARNING, "chatgate.local"):
        assert probe.verdict("m", gguf).extra_buffers
        assert probe.verdict("alias of m", gguf).extra_buffers
    assert probe.runs == 1
    assert not caplog.records
    later = Probe(tmp_path, command=SEGFAULT)
    assert later.verdict("m", gguf).extra_buffers and later.runs == 0


@pytest.mark.parametrize("mode", ["on", "off"])
def test_on_and_off_decide_without_a_child(
    tmp_path: Path, gguf: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe(tmp_path, command=SEGFAULT)
    with caplog.at_level(logging.WARNING, "chatgate.local"):
        verdict = probe.verdict("m", gguf, mode)  # type: ignore[arg-type]
    assert verdict.extra_buffers is (mode == "on")
    assert probe.runs == 0 and not (tmp_path / CACHE_FILE).exists()
    assert not caplog.records  # the user chose: nothing to warn about


def test_a_failing_child_means_off_for_now_and_is_probed_again(
    tmp_path: Path, gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "chatgate.local"):
        verdict = Probe(tmp_path, command=FAILING).verdict("m", gguf)
    assert not verdict.extra_buffers
    assert "exit status 1" in verdict.reason and "cannot read the model file" in verdict.reason
    assert "cannot read the model file" in caplog.records[0].getMessage()
    healthy = Probe(tmp_path, command=HEALTHY)
    assert healthy.verdict("m", gguf).extra_buffers and healthy.runs == 1  # not cached


def test_a_child_that_hangs_is_stopped(tmp_path: Path, gguf: Path) -> None:
    probe = Probe(tmp_path, command=[sys.executable, "-c", "import time; time.sleep(600)"], timeout=0.5)
    verdict = probe.verdict("m", gguf)
    assert not verdict.extra_buffers and "did not finish" in verdict.reason


def test_a_replaced_model_file_or_another_build_is_probed_again(tmp_path: Path, gguf: Path) -> None:
    Probe(tmp_path, command=SEGFAULT).verdict("m", gguf)
    gguf.write_bytes(b"another GGUF, another size")
    probe = Probe(tmp_path, command=HEALTHY)
    assert probe.verdict("m", gguf).extra_buffers and probe.runs == 1
    cache = tmp_path / CACHE_FILE
    data = json.loads(cache.read_text())
    cache.write_text(json.dumps({**data, "llama_cpp_python": "0.0.1"}))  # as after an upgrade
    probe = Probe(tmp_path, command=SEGFAULT)
    assert not probe.verdict("m", gguf).extra_buffers and probe.runs == 1


def test_the_child_runs_this_chatgate_with_the_model_path(tmp_path: Path, gguf: Path) -> None:
    """The default child is this package's probe module, on the model's path."""
    seen = tmp_path / "seen.json"
    spy = [
        sys.executable,
        "-c",
        f"import chatgate, json, os, sys; json.dump([chatgate.__file__, sys.argv[1:]], open({str(seen)!r}, 'w'))",
    ]
    assert Probe(None, command=spy).verdict("m", gguf).extra_buffers
    where, args = json.loads(seen.read_text())
    import chatgate

    assert Path(where) == Path(chatgate.__file__) and args == [str(gguf)]
    assert Probe().command[1:] == ["-m", "chatgate.engines.local.probe"]


def test_the_setting_reaches_every_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, local={"extra_buffers": "off"})
    assert {spec.extra_buffers for spec in specs(settings)} == {"off"}
    assert {spec.extra_buffers for spec in specs(make_settings(tmp_path))} == {"auto"}


def test_the_environment_and_a_model_of_its_own(tmp_path: Path) -> None:
    from chatgate import config

    settings = config.load(None, environ={"CHATGATE_LOCAL_EXTRA_BUFFERS": "on"})
    assert settings.local.extra_buffers == "on"
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    settings = make_settings(
        tmp_path, local={"extra_buffers": "on"}, models={"mine": {"path": str(gguf), "extra_buffers": "off"}}
    )
    assert [spec.extra_buffers for spec in specs(settings)] == ["off"]
    with pytest.raises(config.ConfigError, match="local.extra_buffers"):
        config.load(None, environ={"CHATGATE_LOCAL_EXTRA_BUFFERS": "maybe"})
