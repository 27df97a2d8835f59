"""The benchmarks still run (tiny counts; their numbers are not checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "script",
    [
        ["bench/gateway.py", "--requests", "5"],
        ["bench/translate.py", "--iterations", "10"],
        ["bench/upstream_relay.py", "--requests", "64", "--chunks", "20"],
        ["bench/http_clients.py", "--requests", "64"],
        ["bench/quotas.py", "--requests", "20"],
        ["bench/gemini.py", "--requests", "64", "--streams", "16"],
        pytest.param(
            ["bench/extra_buffers.py", "--tokens", "4", "--repeat", "1"], marks=pytest.mark.model, id="extra_buffers"
        ),
        pytest.param(["bench/soak.py", "--minutes", "0.1"], marks=pytest.mark.model),
        pytest.param(
            [
                "bench/loop_control.py",
                "--seeds",
                "1",
                "--max-tokens",
                "8",
                "--temperatures",
                "0",
                "--cases",
                "event,tool",
            ],
            marks=pytest.mark.model,
            id="loop_control",
        ),
        pytest.param(
            ["bench/tool_choice.py", "--seeds", "1", "--limit", "1", "--max-tokens", "8", "--modes", "decide"],
            marks=pytest.mark.model,
            id="tool_choice",
        ),
    ],
)
def test_benchmark_runs(script: list[str]) -> None:
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'bench'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, *script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # tool_choice.py prints error rates, every other script a ratio to its baseline.
    assert ("missed" if script[0] == "bench/tool_choice.py" else "ratio") in result.stdout
