"""``GET .../locations/{location}/endpoints``: the endpoints a project may call, in Vertex's
shape, under the same credentials and project scoping as the endpoints themselves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatgate.front.app import build_app
from tests.asgi import running
from tests.front.conftest import AUTH, KEY, PROJECT, settings, token
from tests.front.fake import MODEL, FakeEngine

ENDPOINTS = {
    "fake-ep": {"model": MODEL},
    "team-b": {"model": MODEL, "projects": ["other"]},  # not for PROJECT
    "both": {"model": MODEL, "projects": [PROJECT, "other"]},
}


def listing(project: str = PROJECT, version: str = "v1") -> str:
    return f"/{version}/projects/{project}/locations/us-central1/endpoints"


@pytest.fixture
async def http(engine: FakeEngine, state_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client(engine, state_path, endpoints=ENDPOINTS) as http:
        yield http


@contextlib.asynccontextmanager
async def client(engine: FakeEngine, state_path: Path, **sections: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app for ``sections``, started for the block."""
    app = build_app(settings(state_path, **sections), local=engine)
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://chatgate") as http:
        yield http


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
async def test_lists_the_endpoints_the_project_may_use_in_vertex_shape(http: httpx.AsyncClient, version: str) -> None:
    r = await http.get(listing(version=version), headers=AUTH)
    assert r.status_code == 200, r.text
    parent = f"projects/{PROJECT}/locations/us-central1"
    assert r.json() == {
        "endpoints": [
            {"name": f"{parent}/endpoints/both", "displayName": "both"},
            {"name": f"{parent}/endpoints/fake-ep", "displayName": "fake-ep"},
            # The default configuration's endpoint, bound to the first local model.
            {"name": f"{parent}/endpoints/local", "displayName": "local"},
        ]
    }


async def test_an_endpoint_restricted_to_other_projects_is_listed_there_only(http: httpx.AsyncClient) -> None:
    mine = {e["displayName"] for e in (await http.get(listing(), headers=AUTH)).json()["endpoints"]}
    theirs = {e["displayName"] for e in (await http.get(listing("other"), headers=AUTH)).json()["endpoints"]}
    assert "team-b" not in mine and "team-b" in theirs
    assert mine - {"team-b"} <= theirs


async def test_every_listed_endpoint_answers_its_models_route_and_no_other_does(http: httpx.AsyncClient) -> None:
    listed = (await http.get(listing(), headers=AUTH)).json()["endpoints"]
    for endpoint in listed:
        r = await http.get(f"/v1/{endpoint['name']}/models", headers=AUTH)
        assert r.status_code == 200 and r.json()["data"][0]["owned_by"] == endpoint["displayName"], r.text
    hidden = await http.get(f"/v1/projects/{PROJECT}/locations/us-central1/endpoints/team-b/models", headers=AUTH)
    assert hidden.status_code == 403 and hidden.json()["error"]["code"] == "project_not_allowed"


async def test_credentials_are_checked_against_the_project_in_google_error_shape(
    http: httpx.AsyncClient, engine: FakeEngine, state_path: Path
) -> None:
    missing = await http.get(listing())
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED" and missing.json()["error"]["code"] == 401
    wrong = await http.get(listing(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # A key scoped to `other` may list `other`'s endpoints, not PROJECT's.
    scoped = {"Authorization": "Bearer scoped-key"}
    assert (await http.get(listing("other"), headers=scoped)).status_code == 200
    denied = await http.get(listing(), headers=scoped)
    assert denied.status_code == 403 and denied.json()["error"]["status"] == "PERMISSION_DENIED"
    # The same for a signed token minted for one project.
    minted = {"Authorization": f"Bearer {token(state_path, project='other')}"}
    assert (await http.get(listing("other"), headers=minted)).status_code == 200
    assert (await http.get(listing(), headers=minted)).status_code == 403
    assert (await http.get(listing(), headers={"x-goog-api-key": KEY})).status_code == 200
    assert engine.calls == []


async def test_only_get_and_known_versions(http: httpx.AsyncClient) -> None:
    assert (await http.get(listing(version="v2"), headers=AUTH)).status_code == 404
    assert (await http.post(listing(), headers=AUTH, json={})).status_code == 405


async def test_a_project_without_endpoints_gets_an_empty_answer_as_vertex_writes_it(
    engine: FakeEngine, state_path: Path
) -> None:
    only_x = {"fake-ep": {"model": MODEL, "projects": ["x"]}, "local": {"model": MODEL, "projects": ["x"]}}
    async with client(engine, state_path, endpoints=only_x) as http:
        r = await http.get(listing(), headers=AUTH)
        assert r.status_code == 200 and r.json() == {}
        assert len((await http.get(listing("x"), headers=AUTH)).json()["endpoints"]) == 2


async def test_readyz_names_the_local_models_only_even_with_gemini_configured(
    engine: FakeEngine, state_path: Path
) -> None:
    """The playground tells local models from Gemini's ``google/*`` in the openapi listing by
    this list; a local model may be named ``google/...`` too."""
    gemini = {"project": "p", "access_token": "t", "base_url": "http://127.0.0.1:9"}
    async with client(engine, state_path, gemini=gemini) as http:
        ready = (await http.get("/readyz")).json()
        assert ready["status"] == "ready" and sorted(ready["models"]) == sorted(engine.names())
