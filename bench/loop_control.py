"""Loop control on the embedded model: the share of structured answers that finish.

    python bench/loop_control.py [--seeds 20] [--max-tokens 600] [--temperatures 0,0.7,1.0] [--threads N]

For every schema (an object with an array of objects, nested objects, enums and dates, a tool
call with an array argument), temperature and seed, the same request runs with loop control
off (``local.loop_control = 0``, the baseline) and on (the default), interleaved. An answer
counts when it finishes (Gemini ``STOP``: OpenAI's ``stop`` or ``tool_calls``) within
``max_tokens`` and validates against its schema. Prints the share per row for both, and the
ratio on/off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import jsonschema  # noqa: E402

from chatgate import config  # noqa: E402
from chatgate.engines.local.engine import LocalEngine  # noqa: E402
from chatgate.engines.local.models import specs  # noqa: E402
from chatgate.protocols import gemini as g  # noqa: E402

TICKET = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "quantity": {"type": "integer"},
                    "price": {"type": "number"},
                },
                "required": ["name", "quantity", "price"],
            },
        },
    },
    "required": ["title", "items"],
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string"},
                "city": {"type": "string"},
                "country": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "code": {"type": "string"}},
                    "required": ["name", "code"],
                },
            },
            "required": ["street", "city", "country"],
        },
        "employer": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "city": {"type": "string"}},
            "required": ["name", "city"],
        },
    },
    "required": ["name", "address", "employer"],
}
EVENT = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "status": {"type": "string", "enum": ["planned", "confirmed", "cancelled"]},
        "kind": {"type": "string", "enum": ["meeting", "party", "conference", "other"]},
    },
    "required": ["title", "date", "status", "kind"],
}
ORDER_TOOL = {
    "type": "object",
    "properties": {"customer": {"type": "string"}, "products": {"type": "array", "items": {"type": "string"}}},
    "required": ["customer", "products"],
}

CASES: dict[str, tuple[str, dict[str, Any], bool]] = {
    # name: (prompt, schema, as a tool call)
    "ticket (array of objects)": ("Create an invoice ticket with line items for office supplies.", TICKET, False),
    "person (nested objects)": (
        "Extract: Ana Costa lives at 12 Rua Augusta in Lisbon, Portugal, and works for Sonae in Porto.",
        PERSON,
        False,
    ),
    "event (enums, date)": ("Extract the event: the team meeting on March 3rd 2025 is confirmed.", EVENT, False),
    "tool call (array argument)": ("Order a laptop, a mouse and a keyboard for Maria.", ORDER_TOOL, True),
}


def request(
    prompt: str, schema: dict[str, Any], tool: bool, temperature: float, seed: int, max_tokens: int
) -> g.GenerateContentRequest:
    generation = g.GenerationConfig(temperature=temperature, seed=seed, max_output_tokens=max_tokens)
    contents = [g.Content(role="user", parts=[g.Part(text=prompt)])]
    if not tool:
        generation.response_mime_type = "application/json"
        generation.response_json_schema = schema
        return g.GenerateContentRequest(contents=contents, generation_config=generation)
    return g.GenerateContentRequest(
        contents=contents,
        generation_config=generation,
        tools=[
            g.Tool(
                function_declarations=[
                    g.FunctionDeclaration(
                        name="place_order",
                        description="Place an order of products for a customer.",
                        parameters_json_schema=schema,
                    )
                ]
            )
        ],
        tool_config=g.ToolConfig(function_calling_config=g.FunctionCallingConfig(mode="ANY")),
    )


def finished(response: g.GenerateContentResponse, schema: dict[str, Any], tool: bool) -> bool:
    [candidate] = response.candidates or [None]
    if candidate is None or candidate.finish_reason != "STOP" or candidate.content is None:
        return False
    try:
        if tool:
            found = [p.function_call.args for p in candidate.content.parts if p.function_call is not None]
            if not found:
                return False
            for args in found:
                jsonschema.validate(args, schema)
            return True
        answer = json.loads("".join(p.text or "" for p in candidate.content.parts))
        jsonschema.validate(answer, schema, format_checker=jsonschema.FormatChecker())
        return True
    except (ValueError, jsonschema.ValidationError):
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=600)
    parser.add_argument("--temperatures", default="0,0.7,1.0")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    parser.add_argument("--cases", default="", help="comma-separated prefixes of case names (default: all)")
    args = parser.parse_args()
    temperatures = [float(t) for t in args.temperatures.split(",")]
    cases = {k: v for k, v in CASES.items() if not args.cases or any(k.startswith(c) for c in args.cases.split(","))}

    engines = {}
    for label, strength in (("off", 0.0), ("on", None)):
        local: dict[str, Any] = {"parallel": 1} | ({"threads": args.threads} if args.threads else {})
        if strength is not None:
            local["loop_control"] = strength
        engine = LocalEngine(specs(config.load(None, environ={}, overrides={"local": local})))
        await engine.start()
        engines[label] = engine

    async def one(engine: LocalEngine, req: g.GenerateContentRequest) -> g.GenerateContentResponse:
        [response] = [r async for r in engine.generate(engine.names()[0], req, stream=False)]
        return response

    print(
        f"{'schema':28} {'temp':>5} {'off':>6} {'on':>6} {'ratio':>6}   (share finishing and valid, "
        f"{args.seeds} seeds, max_tokens {args.max_tokens})"
    )
    try:
        for name, (prompt, schema, tool) in cases.items():
            for temperature in temperatures:
                counts = {"off": 0, "on": 0}
                for seed in range(1, args.seeds + 1):
                    req = request(prompt, schema, tool, temperature, seed, args.max_tokens)
                    for label, engine in engines.items():
                        counts[label] += finished(await one(engine, req), schema, tool)
                off, on = (counts[k] / args.seeds for k in ("off", "on"))
                ratio = f"{on / off:.2f}" if off else "inf" if on else "-"
                print(f"{name:28} {temperature:5.1f} {off:6.0%} {on:6.0%} {ratio:>6}", flush=True)
    finally:
        for engine in engines.values():
            await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main())
