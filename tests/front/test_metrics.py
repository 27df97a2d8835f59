"""Metrics name models as configured, never by the client's string: a client sending many
unique or oddly cased names cannot grow ``/metrics``."""

from __future__ import annotations

import re

import httpx
import pytest

from chatgate.front.metrics import route_kind
from tests.front.conftest import AUTH, ROUTE, body
from tests.front.fake import MODEL

ENDPOINT = "/v1/projects/p/locations/l/endpoints/fake-ep/chat/completions"


def series(metrics: str) -> set[str]:
    """The series /metrics shows (names and labels, without values)."""
    return {line.rsplit(" ", 1)[0] for line in metrics.splitlines() if line and not line.startswith("#")}


def value(metrics: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    assert match, name
    return float(match[1])


async def test_unique_model_names_do_not_grow_metrics(http: httpx.AsyncClient) -> None:
    # Warm every path once (a 200 by each route, a 404, a scrape), then look at the series.
    await http.get("/metrics")
    assert (await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body())).status_code == 200
    assert (await http.post(ENDPOINT, headers=AUTH, json=body())).status_code == 200
    assert (await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(model="nope"))).status_code == 404
    before = (await http.get("/metrics")).text
    for i in range(40):
        odd_case = "".join(c.upper() if (i >> k) & 1 else c for k, c in enumerate(MODEL))
        r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(model=odd_case))
        assert r.status_code == 200 and r.json()["model"] == odd_case  # echoed as sent
        # Long, unique labels (model names are capped at 256 characters).
        r = await http.post(ENDPOINT, headers=AUTH, json=body(model=f"label-{i}-" + "x" * 200))
        assert r.status_code == 200
        r = await http.post(ROUTE + "/chat/completions", headers=AUTH, json=body(model=f"unknown-{i}"))
        assert r.status_code == 404
    after = (await http.get("/metrics")).text
    assert series(after) == series(before)
    assert "label-" not in after and "unknown-" not in after
    # ... and the tokens were counted, under the configured name.
    tokens = f'chatgate_completion_tokens_total{{model="{MODEL}"}}'
    assert value(after, tokens) == value(before, tokens) + 80 * 2


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/chat/completions", "chat_completions"),
        ("/v1/projects/p/locations/l/publishers/google/models/m:generateContent", "generate_content"),
        ("/v1beta/models/m:streamGenerateContent", "stream_generate_content"),
        ("/v1beta1/projects/p/locations/l/publishers/google/models/m:countTokens", "count_tokens"),
        ("/v1/projects/p/locations/l/cachedContents/abc", "cached_contents"),
        ("/v1beta/cachedContents", "cached_contents"),
        ("/v1/models", "models"),
        ("/v1beta/models/m:unknownMethod", "other"),
        ("/nowhere", "other"),
    ],
)
def test_route_kinds_name_each_api_method(path: str, kind: str) -> None:
    assert route_kind(path) == kind
