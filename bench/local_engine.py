"""One stream's tokens/s through chatgate against raw llama-cpp-python on the same model,
prompt, threads and greedy decoding (budget: within 5 %).

Two runs side by side, alternating: raw ``Llama.create_completion(stream=True)``, and
chatgate over HTTP (SSE on a loopback port, the whole path a client sees). Both use the
one loaded model; the raw run borrows it while the server is idle.

    python bench/local_engine.py [--tokens 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatgate import config  # noqa: E402
from chatgate.engines.local.engine import LocalEngine  # noqa: E402
from tests.live import LiveServer  # noqa: E402

PROMPT = "Tell me a very long story."  # greedy decoding runs to max_tokens on SmolLM2


def raw(engine: LocalEngine, tokens: int) -> tuple[int, float]:
    model = engine.model(config.EMBEDDED_MODEL)
    llama = model.llama
    prompt = model._prompt_tokens([{"role": "user", "content": PROMPT}])
    start = time.perf_counter()
    n = sum(1 for _ in llama.create_completion(prompt, max_tokens=tokens, temperature=0, top_k=40, min_p=0.05,
                                               top_p=1.0, repeat_penalty=1.0, stream=True))
    return n, time.perf_counter() - start


def over_http(url: str, tokens: int) -> tuple[int, float]:
    body = {"model": config.EMBEDDED_MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    last = ""
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                last = line
    elapsed = time.perf_counter() - start
    return json.loads(last[6:])["usage"]["completion_tokens"], elapsed


def main(tokens: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        settings = config.load(None, environ={}, overrides={"auth": {"enabled": False, "state_dir": state}})
        with LiveServer(settings) as server:
            engine = server.state.local
            results: dict[str, list[float]] = {"raw llama-cpp-python": [], "chatgate over HTTP (SSE)": []}
            for _ in range(repeat):
                n, t = raw(engine, tokens)
                results["raw llama-cpp-python"].append(n / t)
                n, t = over_http(server.url, tokens)
                results["chatgate over HTTP (SSE)"].append(n / t)
    base = statistics.median(results["raw llama-cpp-python"])
    print(f"{'':34s}{'tokens/s':>10s}")
    for name, rates in results.items():
        rate = statistics.median(rates)
        print(f"{name:34s}{rate:10.1f}   ratio {rate / base:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    main(args.tokens, args.repeat)
