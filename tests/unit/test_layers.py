"""The import rules that keep the data path legible (DESIGN: ``front → translate →
protocols``, ``front → engines → protocols``):

- ``errors`` and ``protocols`` are leaves: ``errors`` imports nothing of chatgate's, and
  ``protocols`` nothing but itself and ``errors``;
- ``translate`` is pure: protocols, errors and itself, never an engine or the front;
- engines never import the front;
- llama-cpp-python is reached through one module, ``engines/local/llama.py``, so that its next
  release (or batched decoding) changes one file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "chatgate"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against its package."""
    package = ["chatgate", *path.relative_to(SRC).parent.parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((SRC / folder).rglob("*.py"))


def ours(names: set[str]) -> set[str]:
    return {name for name in names if name == "chatgate" or name.startswith("chatgate.")}


def under(name: str, *allowed: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)


def test_errors_are_a_leaf() -> None:
    assert ours(imports(SRC / "errors.py")) == set()


@pytest.mark.parametrize("path", modules("protocols"), ids=lambda p: p.name)
def test_protocols_are_a_leaf(path: Path) -> None:
    assert {n for n in ours(imports(path)) if not under(n, "chatgate.protocols", "chatgate.errors")} == set()


@pytest.mark.parametrize("path", modules("translate"), ids=lambda p: p.name)
def test_translate_imports_no_engine_and_no_front(path: Path) -> None:
    allowed = ("chatgate.protocols", "chatgate.errors", "chatgate.translate")
    assert {n for n in ours(imports(path)) if not under(n, *allowed)} == set()


@pytest.mark.parametrize("path", modules("engines"), ids=lambda p: str(p.relative_to(SRC)))
def test_engines_do_not_import_the_front(path: Path) -> None:
    assert {n for n in imports(path) if under(n, "chatgate.front")} == set()


def test_only_the_adapter_imports_llama_cpp() -> None:
    importers = {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if any(under(n, "llama_cpp") for n in imports(path))
    }
    assert importers == {"engines/local/llama.py"}


def test_the_rules_see_imports() -> None:
    """The checks above would pass vacuously if ``imports`` found nothing."""
    found = imports(SRC / "translate" / "request.py")
    assert any(under(n, "chatgate.protocols") for n in found)
    assert any(under(n, "chatgate.front") for n in imports(SRC / "cli.py"))
