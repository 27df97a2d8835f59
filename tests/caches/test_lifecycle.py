"""cachedContents on a local model: create, get, list, update, delete, expiry, scoping, bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.caches.conftest import CACHES, MODEL_RESOURCE, PROJECT, START, Clock, cache_body
from tests.front.fake import PIN_BYTES, FakeEngine


async def create(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await http.post(CACHES, json=cache_body(**fields))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_pins_the_prefix_and_answers_the_resource(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    created = await create(http, ttl="600s")
    cache_id = created["name"].rpartition("/")[2]
    assert created["name"] == f"projects/{PROJECT}/locations/us-central1/cachedContents/{cache_id}"
    assert created["model"] == MODEL_RESOURCE
    assert created["displayName"] == "manual"
    assert created["createTime"] == created["updateTime"] == "2027-01-15T08:00:00.000000Z"
    assert created["expireTime"] == "2027-01-15T08:10:00.000000Z"
    assert created["usageMetadata"] == {"totalTokenCount": 42}
    assert "contents" not in created  # Google does not send the contents back either
    [(pinned, prefix)] = engine.pins.values()
    assert pinned.model == "fake/model-a"
    assert (
        prefix.system_instruction is not None
        and prefix.system_instruction.parts[0].text == "You answer from the manual."
    )
    assert [c.parts[0].text for c in prefix.contents] == ["The manual: ..."]
    assert prefix.generation_config is None


async def test_default_ttl_is_an_hour(http: httpx.AsyncClient) -> None:
    created = await create(http)
    assert created["expireTime"] == "2027-01-15T09:00:00.000000Z"


async def test_expire_time_on_create(http: httpx.AsyncClient) -> None:
    created = await create(http, expireTime="2027-01-16T00:00:00Z")
    assert created["expireTime"] == "2027-01-16T00:00:00.000000Z"


async def test_get_list_delete(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    first, second = await create(http), await create(http, displayName="second")
    got = await http.get(f"/v1/{first['name']}")
    assert got.status_code == 200 and got.json() == first
    listed = (await http.get(CACHES)).json()
    assert [c["name"] for c in listed["cachedContents"]] == [first["name"], second["name"]]
    assert "nextPageToken" not in listed
    deleted = await http.delete(f"/v1/{first['name']}")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert len(engine.pins) == 1  # its pin freed
    gone = await http.get(f"/v1/{first['name']}")
    assert gone.status_code == 404 and gone.json()["error"]["status"] == "NOT_FOUND"
    again = await http.delete(f"/v1/{first['name']}")
    assert again.status_code == 404


async def test_pages(http: httpx.AsyncClient) -> None:
    names = [(await create(http, displayName=f"c{i}"))["name"] for i in range(5)]
    seen: list[str] = []
    token = None
    for _ in range(5):
        params = {"pageSize": "2", **({"pageToken": token} if token else {})}
        page = (await http.get(CACHES, params=params)).json()
        assert len(page["cachedContents"]) <= 2
        seen += [c["name"] for c in page["cachedContents"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert seen == names


async def test_patch_ttl_and_expire_time(http: httpx.AsyncClient, clock: Clock) -> None:
    created = await create(http)
    clock.now += 100
    patched = await http.patch(f"/v1/{created['name']}", json={"ttl": "7200s"}, params={"updateMask": "ttl"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["expireTime"] == "2027-01-15T10:01:40.000000Z"
    assert patched.json()["updateTime"] == "2027-01-15T08:01:40.000000Z"
    assert patched.json()["createTime"] == created["createTime"]
    patched = await http.patch(f"/v1/{created['name']}", json={"expireTime": "2027-01-20T00:00:00.5Z"})
    assert patched.json()["expireTime"] == "2027-01-20T00:00:00.500000Z"


async def test_expired_caches_vanish_and_free_their_pin(
    http: httpx.AsyncClient, clock: Clock, engine: FakeEngine
) -> None:
    created = await create(http, ttl="60s")
    kept = await create(http, ttl="120s")
    clock.now = START + 60
    assert (await http.get(f"/v1/{created['name']}")).status_code == 404
    assert [p.key for p, _ in engine.pins.values()] == [2]
    assert [c["name"] for c in (await http.get(CACHES)).json()["cachedContents"]] == [kept["name"]]


async def test_projects_are_apart(http: httpx.AsyncClient) -> None:
    created = await create(http)
    cache_id = created["name"].rpartition("/")[2]
    scoped = {"Authorization": "Bearer scoped-key"}  # valid for project "other" only
    other = "/v1/projects/other/locations/us-central1/cachedContents"
    assert (await http.get(f"{other}/{cache_id}", headers=scoped)).status_code == 404
    assert (await http.get(other, headers=scoped)).json() == {}
    assert (await http.delete(f"{other}/{cache_id}", headers=scoped)).status_code == 404
    refused = await http.get(f"/v1/{created['name']}", headers=scoped)
    assert refused.status_code == 403 and refused.json()["error"]["status"] == "PERMISSION_DENIED"
    assert (await http.get(f"/v1/{created['name']}")).status_code == 200


async def test_another_location_does_not_see_it(http: httpx.AsyncClient) -> None:
    created = await create(http)
    cache_id = created["name"].rpartition("/")[2]
    assert (
        await http.get(f"/v1/projects/{PROJECT}/locations/europe-west4/cachedContents/{cache_id}")
    ).status_code == 404


async def test_gemini_api_form(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1beta/cachedContents", json={"model": "models/fake/model-a", "contents": [], "ttl": "60s"}
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["name"].startswith("cachedContents/") and created["model"] == "models/fake/model-a"
    got = await http.get(f"/v1beta/{created['name']}")
    assert got.status_code == 200 and got.json()["name"] == created["name"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": None}, "model"),
        ({"model": "fake/no-such-model"}, "model"),
        ({"ttl": "an hour"}, "ttl"),
        ({"ttl": "-5s"}, "ttl"),
        ({"ttl": 3600}, "ttl"),
        ({"expireTime": "tomorrow"}, "expireTime"),
        ({"expireTime": "2020-01-01T00:00:00Z"}, "expireTime"),
        ({"expireTime": "2030-01-01T00:00:00"}, "expireTime"),
        ({"ttl": "60s", "expireTime": "2030-01-01T00:00:00Z"}, "ttl"),
        ({"contents": "text"}, "contents"),
        ({"contents": [{"role": "user", "parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
        ({"temperature": 1}, "temperature"),
    ],
)
async def test_bad_input_is_a_google_400_naming_the_field(
    http: httpx.AsyncClient, fields: dict[str, Any], param: str
) -> None:
    body = {k: v for k, v in cache_body(**fields).items() if v is not None}
    response = await http.post(CACHES, json=body)
    assert response.status_code in (400, 404), response.text
    error = response.json()["error"]
    assert error["status"] == ("NOT_FOUND" if response.status_code == 404 else "INVALID_ARGUMENT")
    assert param.rpartition(".")[2].partition("[")[0] in error["message"] or param in error["message"], error


async def test_bad_page_inputs(http: httpx.AsyncClient) -> None:
    for params in ({"pageSize": "-1"}, {"pageSize": "ten"}, {"pageToken": "not-mine"}):
        response = await http.get(CACHES, params=params)
        assert response.status_code == 400, params
        assert next(iter(params)) in response.json()["error"]["message"]


async def test_bad_patch(http: httpx.AsyncClient) -> None:
    created = await create(http)
    url = f"/v1/{created['name']}"
    assert (await http.patch(url, json={})).status_code == 400
    masked = await http.patch(url, json={"displayName": "x"}, params={"updateMask": "displayName"})
    assert masked.status_code == 400 and "updateMask" in masked.json()["error"]["message"]
    assert (await http.patch(url, json={"ttl": "0s"})).status_code == 400


@pytest.mark.parametrize("overrides", [{"local": {"max_caches": 2}}])
async def test_full_is_a_429(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    await create(http)
    await create(http)
    response = await http.post(CACHES, json=cache_body())
    assert response.status_code == 429
    assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert len(engine.pins) == 2


async def test_engine_refusal_keeps_its_status(http: httpx.AsyncClient, engine: FakeEngine) -> None:
    from chatgate.errors import ResourceExhausted

    engine.pin_error = ResourceExhausted("no room for this cache")
    response = await http.post(CACHES, json=cache_body())
    assert response.status_code == 429 and response.json()["error"]["message"] == "no room for this cache"
    assert (await http.get(CACHES)).json() == {}


async def test_unknown_version_and_credentials(http: httpx.AsyncClient) -> None:
    assert (await http.get(CACHES.replace("/v1/", "/v2/"))).status_code == 404
    response = await http.get(CACHES, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"


assert PIN_BYTES > 0
