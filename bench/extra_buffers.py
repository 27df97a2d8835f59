"""Tokens/s with and without llama.cpp's extra CPU buffer types (AMX, repacked weights), side by side.

What serving without them costs on this machine, for the cases where the probe
(``engines/local/probe.py``) turns them off. Two model files:

- the embedded model as served (SmolLM2-135M, Q4_1);
- a Q4_0 copy of it, made here with llama.cpp's quantizer: Q4_0 is a type llama.cpp repacks
  for AVX2/AVX-512 (and AMX), so it shows what the extra buffer types are worth where they apply.

Each file is loaded twice through chatgate's llama.cpp adapter, extra buffer types on and off;
the runs alternate between the two (on a CPU where llama.cpp crashes with them, as the probe
finds, only "off" is measured). Prompt processing: a ~300-token prompt, each run starting
with different text so nothing is reused from the KV cache. Generation: greedy, after the prompt.
Medians of ``--repeat`` runs; the ratio is off / on.

    python bench/extra_buffers.py [--tokens 128] [--repeat 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from _weights import weights  # noqa: E402
from chatgate.engines.local.engine import available_cores  # noqa: E402
from chatgate.engines.local.llama import Context, system_info  # noqa: E402
from chatgate.engines.local.models import EMBEDDED_PACKAGE, package_gguf  # noqa: E402
from chatgate.engines.local.probe import Probe  # noqa: E402

PROMPT = (
    "Here are the notes of a long meeting about a garden, a library and a bridge. "
    "Everyone spoke in turn, and every point was written down. "
) * 10 + "Summarise them."


def run(context: Context, index: int, tokens: int) -> tuple[float, float]:
    """(prompt tokens/s, generated tokens/s) for one run."""
    prompt = context.tokenize(f"Meeting {index}. " + PROMPT, add_bos=True, special=False)
    started = time.perf_counter()
    generated = context.generate(prompt, temperature=0.0, top_p=1.0, top_k=1, min_p=0.0)
    next(generated)  # the prompt's decode, then the first token
    first = time.perf_counter()
    for _ in range(tokens):
        next(generated)
    return len(prompt) / (first - started), tokens / (time.perf_counter() - first)


def main(tokens: int, repeat: int, threads: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        embedded = package_gguf(EMBEDDED_PACKAGE)
        files = {
            "SmolLM2-135M Q4_1 (embedded)": embedded,
            "SmolLM2-135M Q4_0": weights(embedded, "q4_0", Path(directory)),
        }
        print(f"{threads} threads; llama.cpp: {system_info()}")
        print(
            f"{'model':30s} {'extra buffers':>13s} {'prompt tok/s':>13s} {'ratio':>6s} {'gen tok/s':>10s} {'ratio':>6s}"
        )
        for label, path in files.items():
            # Where llama.cpp crashes with them (the probe's verdict), only "off" can be measured.
            verdict = Probe().verdict(label, path)
            modes = (True, False) if verdict.extra_buffers else (False,)
            contexts = {on: Context(path, context_size=1024, threads=threads, extra_buffers=on) for on in modes}
            results: dict[bool, list[tuple[float, float]]] = {on: [] for on in modes}
            for on in modes:
                run(contexts[on], -1, 8)  # warm up
            for i in range(repeat):
                for on in modes if i % 2 == 0 else modes[::-1]:
                    results[on].append(run(contexts[on], i, tokens))
            base = [statistics.median(r[k] for r in results[modes[0]]) for k in (0, 1)]
            if not verdict.extra_buffers:
                print(f"{label:30s} {'on':>13s}   not measured: {verdict}")
            for on in modes:
                prompt, gen = (statistics.median(r[k] for r in results[on]) for k in (0, 1))
                print(
                    f"{label:30s} {'on' if on else 'off':>13s} {prompt:13.1f} {prompt / base[0]:6.2f} "
                    f"{gen:10.1f} {gen / base[1]:6.2f}"
                )
            for context in contexts.values():
                context.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=available_cores())
    args = parser.parse_args()
    main(args.tokens, args.repeat, args.threads)
