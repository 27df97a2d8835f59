"""OpenAI → Gemini translation per typical request (budget: 20 µs), with decoding and
validation of the OpenAI body measured beside it, against ``json.loads`` of the same body.

    python bench/translate.py [--iterations 20000]
"""

from __future__ import annotations

import argparse
import json
import timeit

from _requests import typical_body
from chatgate.protocols import openai as o
from chatgate.translate.request import to_gemini

BODY = typical_body("google/gemini-2.5-flash", top_p=0.9, seed=1)


def main(n: int) -> None:
    request = o.request_decoder.decode(BODY)
    baseline = min(timeit.repeat(lambda: json.loads(BODY), number=n, repeat=5)) / n * 1e6
    decode = min(timeit.repeat(lambda: o.request_decoder.decode(BODY), number=n, repeat=5)) / n * 1e6
    translate = min(timeit.repeat(lambda: to_gemini(request, "google/gemini-2.5-flash"), number=n, repeat=5)) / n * 1e6
    print(f"{'':40s}{'µs/request':>12s}")
    print(f"{'baseline: json.loads of the body':40s}{baseline:12.2f}")
    print(f"{'decode + validate (msgspec)':40s}{decode:12.2f}   ratio {decode / baseline:.2f}x")
    print(f"{'translate OpenAI -> Gemini':40s}{translate:12.2f}   ratio {translate / baseline:.2f}x   budget 20 µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=20000)
    main(parser.parse_args().iterations)
