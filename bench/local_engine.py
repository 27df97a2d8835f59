"""The local engine against raw llama-cpp-python, in the same run:

- one stream's tokens/s through chatgate against raw llama-cpp-python on the same model,
  prompt, threads and greedy decoding, from the first token on (target: at least 0.95);
- the aggregate tokens/s of 1, 4 and 8 simultaneous streams (continuous batching; target for
  4: at least 2x one stream);
- time to first token for a prompt sharing a ~500-token prefix with an earlier request,
  against the same kind of prompt cold (target: at most 0.3);
- time to first token on a ~1,500-token pinned prefix (``LocalEngine.pin``, what
  cachedContents uses) against the same prompt unpinned (target: at most 0.2).

chatgate runs as users run it (``chatgate serve``, its own process) for the first three; the
client and the raw baseline (``Llama.generate`` plus detokenizing each token, in this process)
alternate, so neither competes with the other for the CPU. The pinned prefix is measured on an
engine in this process (pins have no HTTP route of their own here), after the server stopped.

    python bench/local_engine.py [--tokens 200] [--repeat 3] [--threads N] [--parallel 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from _weights import KINDS, weights  # noqa: E402
from chatgate import config  # noqa: E402
from chatgate.config import EMBEDDED_MODEL  # noqa: E402
from chatgate.engines.local.engine import LocalEngine, available_cores  # noqa: E402
from chatgate.engines.local.llama import Context  # noqa: E402
from chatgate.engines.local.models import specs  # noqa: E402
from chatgate.engines.local.probe import Probe  # noqa: E402
from chatgate.protocols import gemini as g  # noqa: E402
from tests.live import CliServer, cli_env  # noqa: E402

CONTEXT = 2048
# Greedy decoding runs to max_tokens on this prompt, with the shipped weights and converted ones
# (raw generation does not stop at the end token; chatgate's streams must be as long).
PROMPT = "Write a very long story about a dragon and a knight."
# SmolLM2's chat template, rendered for PROMPT (what chatgate's template rendering gives).
RENDERED = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
)


def prefix(words: int) -> str:
    """A system prompt of about ``words`` tokens that nothing cached begins with."""
    facts = " ".join(f"Fact {i}: item {i} is kept on shelf {i % 7}." for i in range(words // 17 + 1))
    return f"Session {uuid.uuid4().hex[:8]}. {facts}"


def raw(llama: object, tokens: int) -> float:
    """Tokens/s from the first token on (the prompt's evaluation is not counted: llama-cpp-python
    keeps the last prompt's cache and skips it when the same prompt comes again)."""
    prompt = llama.tokenize(RENDERED.encode(), special=True)  # type: ignore[attr-defined]
    start = 0.0
    n = 0
    for token in llama.generate(prompt, temp=0, top_k=40, min_p=0.05, top_p=1.0, repeat_penalty=1.0):  # type: ignore[attr-defined]
        llama.detokenize([token])  # type: ignore[attr-defined]
        n += 1
        if n == 1:
            start = time.perf_counter()
        if n >= tokens:
            break
    return (n - 1) / (time.perf_counter() - start)


def stream(url: str, tokens: int, messages: list[dict[str, str]] | None = None) -> tuple[int, float, float]:
    """(completion tokens, seconds to the first content, seconds in all)."""
    body = {
        "model": EMBEDDED_MODEL,
        "messages": messages or [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first = 0.0
    last = ""
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                if not first and '"content":"' in line.replace(" ", ""):
                    first = time.perf_counter() - start
                last = line
    return json.loads(last[6:])["usage"]["completion_tokens"], first, time.perf_counter() - start


def aggregate(url: str, tokens: int, streams: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        made = sum(n for n, _, _ in pool.map(lambda _: stream(url, tokens), range(streams)))
    return made / (time.perf_counter() - start)


def shared_prefix(url: str, repeat: int) -> tuple[float, float]:
    """Median TTFT (cold, warm): a new ~500-token system prompt with one question, then the
    same system prompt with another question."""
    cold, warm = [], []
    for _ in range(repeat):
        system = prefix(500)
        cold.append(stream(url, 1, [{"role": "system", "content": system}, {"role": "user", "content": "Hi."}])[1])
        warm.append(stream(url, 1, [{"role": "system", "content": system}, {"role": "user", "content": "Bye."}])[1])
    return statistics.median(cold), statistics.median(warm)


def pinned(path: Path, threads: int, repeat: int) -> tuple[float, float, int]:
    """Median TTFT (unpinned, pinned) on a ~1,500-token prefix, on an engine in this process."""
    settings = config.load(
        None,
        environ={},
        overrides={
            "local": {"threads": threads, "context_size": CONTEXT},
            "models": {EMBEDDED_MODEL: {"path": str(path)}},
        },
    )
    engine = LocalEngine(specs(settings))
    model = engine.names()[0]

    def request(text: str, question: str) -> g.GenerateContentRequest:
        return g.GenerateContentRequest(
            contents=[
                g.Content(role="user", parts=[g.Part(text=text)]),
                g.Content(role="model", parts=[g.Part(text="Noted.")]),
                g.Content(role="user", parts=[g.Part(text=question)]),
            ],
            generation_config=g.GenerationConfig(temperature=0, max_output_tokens=1),
        )

    async def first(r: g.GenerateContentRequest) -> float:
        start = time.perf_counter()
        async for _ in engine.generate(model, r, stream=True):
            return time.perf_counter() - start
        return time.perf_counter() - start

    async def run() -> tuple[float, float, int]:
        await engine.start()
        try:
            cold, warm = [], []
            tokens = 0
            for _ in range(repeat):
                text = prefix(1500)
                cold.append(await first(request(text, "Where is item 3?")))
                text = prefix(1500)
                kept = await engine.pin(model, g.GenerateContentRequest(contents=request(text, "").contents[:2]))
                tokens = kept.tokens
                warm.append(await first(request(text, "Where is item 3?")))
                engine.unpin(kept)
            return statistics.median(cold), statistics.median(warm), tokens
        finally:
            await engine.aclose()

    return asyncio.run(run())


def main(tokens: int, repeat: int, threads: int, parallel: int, kind: str) -> None:
    with tempfile.TemporaryDirectory() as state:
        shipped = next(s for s in specs(config.load(None, environ={})) if s.name == EMBEDDED_MODEL).path
        path = weights(shipped, kind, Path(state))
        # Both serve ``path`` under the embedded model's name (its own template and aliases).
        settings = Path(state) / "chatgate.toml"
        settings.write_text(f'[models."{EMBEDDED_MODEL}"]\npath = {json.dumps(str(path))}\n')
        # The raw baseline loads the model as chatgate does on this CPU: with llama.cpp's extra
        # buffer types only where the probe found them safe (where they crash, llama-cpp-python's
        # defaults would kill this process).
        verdict = Probe().verdict(EMBEDDED_MODEL, path)
        llama = Context(path, context_size=CONTEXT, threads=threads, extra_buffers=verdict.extra_buffers)._llama
        env = cli_env(
            XDG_STATE_HOME=state,
            CHATGATE_LOCAL_THREADS=str(threads),
            CHATGATE_LOCAL_PARALLEL=str(parallel),
            CHATGATE_LOCAL_CONTEXT_SIZE=str(CONTEXT),
        )
        with CliServer("--no-auth", "--config", str(settings), env=env) as server:
            stream(server.url, 8)  # warm up
            raw_rates, ours = [], []
            for _ in range(repeat):
                raw_rates.append(raw(llama, tokens))
                n, first, seconds = stream(server.url, tokens)
                if n < tokens:
                    print(f"warning: chatgate's answer ended after {n} of {tokens} tokens")
                ours.append((n - 1) / (seconds - first))  # from the first token on, as raw
            together = {n: aggregate(server.url, tokens, n) for n in (1, 4, 8) if n <= parallel}
            cold, warm = shared_prefix(server.url, repeat)
        llama.close()
        unpinned, pin_warm, pin_tokens = pinned(path, threads, repeat)
    base = statistics.median(raw_rates)
    print(f"{path.name} ({kind}), {threads} threads, {parallel} parallel sequences, {CONTEXT}-token window")
    print(f"{verdict}")
    print(f"{'':48s}{'tokens/s':>10s}")
    print(f"{'raw llama-cpp-python (generate)':48s}{base:10.1f}   ratio 1.000")
    one = statistics.median(ours)
    print(f"{'chatgate, one stream over HTTP':48s}{one:10.1f}   ratio {one / base:.3f} to raw")
    for n, rate in together.items():
        print(f"{f'chatgate, {n} simultaneous stream(s)':48s}{rate:10.1f}   ratio {rate / together[1]:.2f} to one")
    print(f"{'':48s}{'TTFT s':>10s}")
    print(f"{'~500-token system prompt, cold':48s}{cold:10.3f}")
    print(f"{'the same prefix again, another question':48s}{warm:10.3f}   ratio {warm / cold:.2f} to cold", flush=True)
    print(f"{f'{pin_tokens}-token prefix, not pinned':48s}{unpinned:10.3f}")
    print(f"{f'{pin_tokens}-token prefix, pinned':48s}{pin_warm:10.3f}   ratio {pin_warm / unpinned:.2f} to unpinned")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=available_cores())
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument(
        "--weights", choices=KINDS, default="as-shipped", help="the embedded model's file, or a copy of another type"
    )
    args = parser.parse_args()
    main(args.tokens, args.repeat, args.threads, args.parallel, args.weights)
