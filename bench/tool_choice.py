"""Tool choice ``auto`` on the embedded model: does it call a tool when one plainly fits,
answer in text when none does, and answer in text once a tool's result has come back?

    python bench/tool_choice.py [--seeds 3] [--max-tokens 128] [--temperature T] [--modes free,decide] [--threads N]

Runs the question set of ``_tool_questions.py`` (22 questions a tool answers, 22 none does,
over six tool sets of one to four functions; six conversations whose call has been answered)
through the local engine, with ``tool_choice`` absent (AUTO), once per seed, in each mode of
``local.tool_decision`` (``free``: the model's own choice, as before; ``decide``: chatgate
decides). Prints both error rates per mode: a question a tool answers that got no call (or a
call of another function, or arguments that do not validate), a question no tool answers that
got a call, and a tool result followed by another call instead of text.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import jsonschema  # noqa: E402

from _tool_questions import FITS, NO_TOOL, RESULTS, TOOLSETS  # noqa: E402
from chatgate import config  # noqa: E402
from chatgate.engines.local.engine import LocalEngine  # noqa: E402
from chatgate.engines.local.models import specs  # noqa: E402
from chatgate.protocols import gemini as g  # noqa: E402


def request(
    toolset: str, contents: list[g.Content], *, seed: int, temperature: float | None, max_tokens: int
) -> g.GenerateContentRequest:
    declarations = [
        g.FunctionDeclaration(name=f["name"], description=f["description"], parameters_json_schema=f["parameters"])
        for f in TOOLSETS[toolset]
    ]
    return g.GenerateContentRequest(
        contents=contents,
        tools=[g.Tool(function_declarations=declarations)],
        generation_config=g.GenerationConfig(temperature=temperature, seed=seed, max_output_tokens=max_tokens),
    )


def user(text: str) -> g.Content:
    return g.Content(role="user", parts=[g.Part(text=text)])


def answered(question: str, name: str, args: dict[str, Any], result: dict[str, Any]) -> list[g.Content]:
    return [
        user(question),
        g.Content(role="model", parts=[g.Part(function_call=g.FunctionCall(name=name, args=args))]),
        g.Content(role="user", parts=[g.Part(function_response=g.FunctionResponse(name=name, response=result))]),
    ]


def calls(response: g.GenerateContentResponse) -> list[g.FunctionCall]:
    [candidate] = response.candidates or []
    parts = candidate.content.parts if candidate.content else []
    return [p.function_call for p in parts if p.function_call is not None]


def valid_call(found: list[g.FunctionCall], toolset: str, expected: str) -> bool:
    if not found or found[0].name != expected:
        return False
    schema = next(f["parameters"] for f in TOOLSETS[toolset] if f["name"] == expected)
    try:
        jsonschema.validate(found[0].args or {}, schema)
    except jsonschema.ValidationError:
        return False
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=None, help="default: absent (OpenAI's 1.0)")
    parser.add_argument("--modes", default="free,decide")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions of each group")
    parser.add_argument("--verbose", action="store_true", help="print every wrong answer")
    args = parser.parse_args()

    print(
        f"{'mode':8} {'tool fits: missed':>18} {'no tool: called':>16} {'after result: called':>21} {'s/request':>10}"
        f"   ({args.seeds} seeds, temperature {args.temperature or 'absent'}, max_tokens {args.max_tokens})"
    )
    fits, no_tool, results = (group[: args.limit] for group in (FITS, NO_TOOL, RESULTS))
    local: dict[str, Any] = {"parallel": 1} | ({"threads": args.threads} if args.threads else {})
    for mode in args.modes.split(","):
        engine = LocalEngine(specs(config.load(None, environ={}, overrides={"local": local | {"tool_decision": mode}})))
        await engine.start()
        model = engine.names()[0]

        async def one(req: g.GenerateContentRequest) -> g.GenerateContentResponse:
            [response] = [r async for r in engine.generate(model, req, stream=False)]  # noqa: B023
            return response

        missed = called = looped = requests = 0
        started = time.perf_counter()
        try:
            for seed in range(1, args.seeds + 1):
                kw = {"seed": seed, "temperature": args.temperature, "max_tokens": args.max_tokens}
                for toolset, question, expected in fits:
                    found = calls(await one(request(toolset, [user(question)], **kw)))
                    if not valid_call(found, toolset, expected):
                        missed += 1
                        if args.verbose:
                            print(f"  missed [{mode}] {question!r}: {[(c.name, c.args) for c in found]}")
                for toolset, question in no_tool:
                    found = calls(await one(request(toolset, [user(question)], **kw)))
                    if found:
                        called += 1
                        if args.verbose:
                            print(f"  called [{mode}] {question!r}: {[(c.name, c.args) for c in found]}")
                for toolset, question, name, call_args, result in results:
                    found = calls(await one(request(toolset, answered(question, name, call_args, result), **kw)))
                    if found:
                        looped += 1
                        if args.verbose:
                            print(f"  looped [{mode}] {question!r}: {[(c.name, c.args) for c in found]}")
                requests += len(fits) + len(no_tool) + len(results)
        finally:
            await engine.aclose()
        elapsed = (time.perf_counter() - started) / max(1, requests)
        n = args.seeds
        print(
            f"{mode:8} {missed / (n * len(fits)):>18.0%} {called / (n * len(no_tool)):>16.0%} "
            f"{looped / (n * len(results)):>21.0%} {elapsed:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
