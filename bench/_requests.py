"""The typical chat request the benchmarks send: a short conversation with a system prompt."""

from __future__ import annotations

import json


def typical_body(model: str, **fields: object) -> bytes:
    return json.dumps(
        {
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": [{"type": "text", "text": "And of Italy? Answer in one word."}]},
            ],
            "temperature": 0.7,
            "max_tokens": 64,
            "stop": ["\n\n"],
            **fields,
        }
    ).encode()
