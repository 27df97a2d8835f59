"""The cost of constrained decoding on the embedded model: tokens/s with and without a
grammar, same prompt, same seeds, runs interleaved so that other load on the machine
hits every variant alike.

    python bench/grammar.py [--runs 5] [--tokens 96]

Variants: free text; chatgate's llguidance constraint (a JSON Schema answer; a tool call);
and, for comparison, llama.cpp's own GBNF grammar sampler built from the same schema by
llama-cpp-python. Prints tokens/s (median over runs) and the ratio to free text.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import llama_cpp  # noqa: E402
from llama_cpp.llama_grammar import LlamaGrammar  # noqa: E402

from chatgate.engines.local import prompt, schema  # noqa: E402
from chatgate.engines.local.constrain import Constraint, tokenizer  # noqa: E402
from chatgate.engines.local.engine import available_cores  # noqa: E402
from chatgate.engines.local.generation import MIN_P, TOP_K  # noqa: E402
from chatgate.engines.local.llama import Context  # noqa: E402
from chatgate.engines.local.models import EMBEDDED_PACKAGE, package_gguf  # noqa: E402
from chatgate.protocols import gemini as g  # noqa: E402

PROMPT = "<|im_start|>user\nList the countries of Europe with their capitals and one fact about each.<|im_end|>\n<|im_start|>assistant\n"
SCHEMA = {
    "type": "object",
    "properties": {
        "countries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "capital": {"type": "string"},
                    "fact": {"type": "string"},
                    "population": {"type": "integer", "minimum": 0},
                },
                "required": ["name", "capital", "fact", "population"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["countries"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}


class Timed(Constraint):
    """The constraint, with the time it spends (mask, commit) added up."""

    spent = 0.0
    steps = 0

    def __call__(self, ids: Any, logits: Any) -> Any:
        started = time.perf_counter()
        out = super().__call__(ids, logits)
        Timed.spent += time.perf_counter() - started
        Timed.steps += 1
        return out

    def advance(self, token: int) -> None:
        started = time.perf_counter()
        super().advance(token)
        Timed.spent += time.perf_counter() - started


def run(
    context: Context,
    tokens: list[int],
    limit: int,
    seed: int,
    constraint: Constraint | None = None,
    gbnf: tuple[llama_cpp.Llama, LlamaGrammar] | None = None,
) -> tuple[int, float]:
    """chatgate's context (free or under llguidance), or, with ``gbnf``, llama-cpp-python's own
    ``Llama`` on the same file under a GBNF grammar."""
    started = time.perf_counter()
    if gbnf is not None:
        llama, grammar = gbnf
        llama.set_seed(seed)
        stream = llama.generate(
            tokens, top_k=TOP_K, top_p=1.0, min_p=MIN_P, temp=1.0, repeat_penalty=1.0, grammar=grammar
        )
    else:
        stream = context.generate(
            tokens, top_k=TOP_K, top_p=1.0, min_p=MIN_P, temperature=1.0, seed=seed, logits_processor=constraint
        )
    produced = 0
    for token in stream:
        if context.is_end(token):  # the same vocabulary in both
            break
        produced += 1
        if constraint is not None:
            constraint.advance(token)
            if constraint.finished:
                break
        if produced >= limit:
            break
    return produced, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=available_cores())
    args = parser.parse_args()
    path = package_gguf(EMBEDDED_PACKAGE)
    context = Context(path, context_size=1024, threads=args.threads)
    llama = llama_cpp.Llama(
        model_path=str(path), n_ctx=1024, n_threads=args.threads, n_threads_batch=args.threads, verbose=False
    )
    tokenizer(context)  # built once per model, at the first constrained request
    tokens = context.tokenize(PROMPT, add_bos=True, special=True)
    json_grammar = f"start: answer\nanswer: {schema.json_rule(SCHEMA)}"
    call_request = g.GenerateContentRequest(
        contents=[],
        tools=[
            g.Tool(function_declarations=[g.FunctionDeclaration(name="get_weather", parameters_json_schema=WEATHER)])
        ],
        tool_config=g.ToolConfig(function_calling_config=g.FunctionCallingConfig(mode="ANY")),
    )
    call_grammar = prompt.output(call_request, "bench").grammar
    assert call_grammar is not None
    gbnf_source = LlamaGrammar.from_json_schema(__import__("json").dumps(SCHEMA), verbose=False)

    variants = {
        "free text": dict,
        "llguidance JSON Schema": lambda: {"constraint": Timed(context, json_grammar)},
        "llguidance tool call (parallel)": lambda: {"constraint": Timed(context, call_grammar)},
        "llama.cpp GBNF JSON Schema": lambda: {"gbnf": (llama, gbnf_source)},
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    counts: dict[str, int] = {name: 0 for name in variants}
    run(context, tokens, 4, 0)  # warm up: the prompt is in the KV cache from here on
    run(context, tokens, 4, 0, gbnf=(llama, gbnf_source))
    for i in range(args.runs):
        for name, make in variants.items():
            produced, seconds = run(context, tokens, args.tokens, seed=100 + i, **make())
            results[name].append(produced / seconds)
            counts[name] += produced
    base = statistics.median(results["free text"])
    print(f"SmolLM2-135M Q4_1, {args.runs} runs of up to {args.tokens} tokens, threads={args.threads}")
    print(f"{'variant':34} {'tokens/s':>9} {'ratio':>6} {'tokens':>7}")
    for name, rates in results.items():
        median = statistics.median(rates)
        print(f"{name:34} {median:9.1f} {median / base:6.2f} {counts[name]:7d}")
    print(f"llguidance per token (mask + commit): {1e6 * Timed.spent / max(1, Timed.steps):.0f} µs")


if __name__ == "__main__":
    main()
