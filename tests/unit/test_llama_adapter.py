"""llama-cpp-python is reached through one module, engines/local/llama.py, so that its next
release (or batched decoding) changes one file."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "chatgate"
ADAPTER = SRC / "engines" / "local" / "llama.py"


def test_only_the_adapter_imports_llama_cpp() -> None:
    importers = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "llama_cpp" or name.startswith("llama_cpp.") for name in names):
                importers.append(path.relative_to(SRC).as_posix())
    assert set(importers) == {"engines/local/llama.py"}
