"""The playground's files as served: a redirect from ``/``, a strict CSP, the Host check.
Model-free: a chatgate with no local model."""

from __future__ import annotations

from pathlib import Path

import httpx

from chatgate.engines.local.engine import LocalEngine
from tests.conftest import make_settings
from tests.live import LiveServer


def test_root_redirects_to_the_page_served_with_a_strict_csp(tmp_path: Path) -> None:
    with LiveServer(make_settings(tmp_path, auth={"api_keys": ["k"]}), local=LocalEngine([])) as server:
        home = httpx.get(server.url + "/")
        assert home.status_code == 307 and home.headers["location"] == "/playground/"
        page = httpx.get(server.url + "/", follow_redirects=True)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="main.js">' in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        for name in ("main.js", "api.js", "request.js", "schema.js"):
            module = httpx.get(f"{server.url}/playground/{name}")
            assert module.status_code == 200, name
            assert module.headers["content-type"].startswith("text/javascript"), module.headers
            assert "default-src 'self'" in module.headers["content-security-policy"]
        missing = httpx.get(server.url + "/playground/nothing.js")
        assert missing.status_code == 404 and missing.json()["error"]["type"], missing.text


def test_every_asset_is_from_this_server() -> None:
    """No CDN: nothing in the page or its modules names another host."""
    folder = Path(__file__).resolve().parents[2] / "src" / "chatgate" / "front" / "playground"
    for path in folder.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name


def test_with_auth_off_the_page_is_served_to_loopback_names_only(tmp_path: Path) -> None:
    with LiveServer(make_settings(tmp_path, auth={"enabled": False}), local=LocalEngine([])) as server:
        ok = httpx.get(server.url + "/playground/", headers={"Host": f"localhost:{server.port}"})
        assert ok.status_code == 200
        rebound = httpx.get(server.url + "/playground/", headers={"Host": "attacker.example"})
        assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "host_not_allowed"
