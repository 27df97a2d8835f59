"""Who gets in and what they can reach: Content-Type and Host checks (auth off), project
scoping of endpoints and Gemini, the Gemini allow-lists, and no leaking of Google's
credential errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gemini.fake import FakeGemini
from tests.hardening.conftest import JSON, OK, ROUTE, chat, error_of, gateway
from tests.live import LiveServer
from tests.upstream.servers import Upstream, openai_stub

OPENAPI = ROUTE.format("proj", "openapi")


def post(server: LiveServer, body: Any, route: str = OPENAPI, **headers: str) -> httpx.Response:
    return httpx.post(server.url + route, content=json.dumps(body).encode(), headers={**JSON, **headers}, timeout=60)


# --- item 9: auth off is not open to every web page ----------------------------------------


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_a_body_that_is_not_declared_json_is_a_415(tmp_path: Path, fake: FakeGemini, content_type: str | None) -> None:
    with gateway(tmp_path, fake) as server:
        headers = {"Content-Type": content_type} if content_type else {}
        response = httpx.post(server.url + OPENAPI, content=json.dumps(chat()).encode(), headers=headers)
        assert error_of(response, 415)["code"] == "unsupported_media_type"
        assert not fake.seen
        fake.reply(200, OK)
        assert post(server, chat()).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil.example", "10.0.0.5:8080"]
)
def test_dns_rebinding_host_is_refused_when_auth_is_off(tmp_path: Path, fake: FakeGemini, host: str) -> None:
    with gateway(tmp_path, fake) as server:
        for method, path in (("POST", OPENAPI), ("GET", "/v1/models"), ("GET", "/metrics")):
            response = httpx.request(
                method, server.url + path, content=json.dumps(chat()).encode(), headers={**JSON, "Host": host}
            )
            assert error_of(response, 403)["code"] == "host_not_allowed"
        assert not fake.seen
        assert httpx.get(server.url + "/healthz", headers={"Host": host}).status_code == 200  # probes stay open
        for loopback in ("localhost", f"localhost:{server.port}", "127.0.0.1", f"[::1]:{server.port}", "LocalHost."):
            fake.reply(200, OK)
            assert post(server, chat(), Host=loopback).status_code == 200, loopback


def test_allowed_hosts_replaces_the_loopback_default(tmp_path: Path, fake: FakeGemini) -> None:
    with gateway(tmp_path, fake, server={"allowed_hosts": ["chat.internal"]}) as server:
        fake.reply(200, OK)
        assert post(server, chat(), Host="chat.internal:8080").status_code == 200
        assert error_of(post(server, chat(), Host="localhost"), 403)["code"] == "host_not_allowed"


def test_with_auth_on_any_host_is_accepted(tmp_path: Path, fake: FakeGemini) -> None:
    with gateway(tmp_path, fake, auth={"enabled": True, "api_keys": ["k" * 40]}) as server:
        fake.reply(200, OK)
        response = post(server, chat(), Host="chat.example.com", Authorization="Bearer " + "k" * 40)
        assert response.status_code == 200, response.text


# --- item 8: project scoping of endpoints and Gemini ---------------------------------------


def test_endpoints_and_gemini_serve_only_their_projects(tmp_path: Path, fake: FakeGemini) -> None:
    with (
        Upstream(openai_stub) as up,
        gateway(
            tmp_path,
            fake,
            gemini={"projects": ["team-a"]},
            endpoints={"relay": {"upstreams": [up.url], "model": "stub-model", "projects": ["team-b"]}},
        ) as server,
    ):
        error = error_of(post(server, chat(), ROUTE.format("team-b", "openapi")), 403)
        assert error["code"] == "project_not_allowed"
        assert not fake.seen
        fake.reply(200, OK)
        assert post(server, chat(), ROUTE.format("team-a", "openapi")).status_code == 200

        relay = {"messages": [{"role": "user", "content": "hi"}]}
        assert error_of(post(server, relay, ROUTE.format("team-a", "relay")), 403)["code"] == "project_not_allowed"
        models = httpx.get(server.url + ROUTE.format("team-a", "relay").replace("chat/completions", "models"))
        assert error_of(models, 403)["code"] == "project_not_allowed"
        assert not up.chats
        assert post(server, relay, ROUTE.format("team-b", "relay")).status_code == 200
        assert len(up.chats) == 1


# --- item 7: confused deputy through Gemini ------------------------------------------------

ALLOW = {
    "allowed_file_uris": ["gs://team-bucket/shared/"],
    "allowed_cached_contents": ["projects/proj/locations/us-central1/cachedContents/ok-"],
    "allowed_retrieval": ["projects/proj/locations/us-central1/ragCorpora/public-"],
}


def image(uri: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": uri}}],
        }
    ]


RAG = "projects/proj/locations/us-central1/ragCorpora/{}"
DENIED: list[tuple[str, dict[str, Any], str]] = [
    ("image_url", chat(messages=image("gs://other-bucket/secret.png")), "contents[0].parts[1].fileData.fileUri"),
    (
        "prefix trick",
        chat(messages=image("gs://team-bucket/shared-not/x.png")),
        "contents[0].parts[1].fileData.fileUri",
    ),
    (
        "file part",
        chat(
            messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "gs://other-bucket/doc.pdf"}}]}]
        ),
        "contents[0].parts[0].fileData.fileUri",
    ),
    (
        "https file",
        chat(messages=image("https://generativelanguage.googleapis.com/v1beta/files/abc")),
        "contents[0].parts[1].fileData.fileUri",
    ),
    (
        "cached content",
        chat(extra_body={"google": {"cached_content": "projects/proj/locations/us-central1/cachedContents/9"}}),
        "cachedContent",
    ),
    (
        "rag corpus",
        chat(
            extra_body={
                "google": {
                    "tools": [
                        {
                            "retrieval": {
                                "vertex_rag_store": {"rag_resources": [{"rag_corpus": RAG.format("private-1")}]}
                            }
                        }
                    ]
                }
            }
        ),
        "tools[0].retrieval.vertexRagStore.ragResources[0].ragCorpus",
    ),
    (
        "search datastore",
        chat(
            extra_body={
                "google": {
                    "tools": [
                        {
                            "retrieval": {
                                "vertexAiSearch": {
                                    "datastore": "projects/proj/locations/global/collections/default_collection/dataStores/hr"
                                }
                            }
                        }
                    ]
                }
            }
        ),
        "tools[0].retrieval.vertexAiSearch.datastore",
    ),
    (
        "external api",
        chat(
            extra_body={
                "google": {
                    "tools": [
                        {"retrieval": {"externalApi": {"apiSpec": "ELASTIC_SEARCH", "endpoint": "https://es.internal"}}}
                    ]
                }
            }
        ),
        "tools[0].retrieval.externalApi",
    ),
]


@pytest.mark.parametrize(("body", "param"), [(b, p) for _, b, p in DENIED], ids=[n for n, _, _ in DENIED])
def test_resources_outside_the_allow_lists_are_403(
    tmp_path: Path, fake: FakeGemini, body: dict[str, Any], param: str
) -> None:
    with gateway(tmp_path, fake, gemini=ALLOW) as server:
        for stream in (False, True):
            error = error_of(post(server, {**body, "stream": stream}), 403)
            assert error["code"] == "resource_not_allowed" and error["param"] == param
        assert not fake.seen  # Google never saw the request


def test_resources_inside_the_allow_lists_pass(tmp_path: Path, fake: FakeGemini) -> None:
    body = chat(
        messages=image("gs://team-bucket/shared/cat.png"),
        extra_body={
            "google": {
                "cached_content": "projects/proj/locations/us-central1/cachedContents/ok-1",
                "tools": [
                    {"retrieval": {"vertex_rag_store": {"rag_resources": [{"rag_corpus": RAG.format("public-1")}]}}}
                ],
            }
        },
    )
    with gateway(tmp_path, fake, gemini=ALLOW) as server:
        fake.reply(200, OK)
        response = post(server, body)
        assert response.status_code == 200, response.text
        assert fake.seen[0].body["contents"][0]["parts"][1]["fileData"]["fileUri"] == "gs://team-bucket/shared/cat.png"


def test_without_allow_lists_nothing_changes(tmp_path: Path, fake: FakeGemini) -> None:
    with gateway(tmp_path, fake) as server:
        fake.reply(200, OK)
        assert post(server, chat(messages=image("gs://any-bucket/x.png"))).status_code == 200


# --- item 11: Google's credential errors stay in the log -----------------------------------


@pytest.mark.parametrize(("status", "name"), [(401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED")])
def test_googles_refusal_is_a_generic_502(
    tmp_path: Path, fake: FakeGemini, status: int, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Permission 'aiplatform.endpoints.predict' denied for sa-chatgate@proj.iam.gserviceaccount.com"
    with gateway(tmp_path, fake) as server:
        for stream in (False, True):
            fake.reply(status, {"error": {"code": status, "message": secret, "status": name}})
            response = post(server, chat(stream=stream))
            error = error_of(response, 502)
            assert error["code"] == "upstream_auth_failed"
            assert "sa-chatgate" not in response.text and name not in response.text
    assert "sa-chatgate" in caplog.text  # the details are logged


def test_google_auth_failure_text_does_not_reach_the_client(
    tmp_path: Path, fake: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    creds = tmp_path / "private-dir" / "sa-key.json"
    creds.parent.mkdir()
    creds.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "leaky@proj.iam.gserviceaccount.com",
                "private_key": "not a key",
                "token_uri": fake.url + "/token",
            }
        )
    )
    with gateway(tmp_path, fake, gemini={"access_token": None, "credentials_file": str(creds)}) as server:
        response = post(server, chat())
        error = error_of(response, 502)
        assert error["code"] == "upstream_auth_failed"
        assert "leaky" not in response.text and "private-dir" not in response.text
    assert "could not obtain Google credentials" in caplog.text
