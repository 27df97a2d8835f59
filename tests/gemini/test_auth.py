"""Credentials: google-auth refreshed off the event loop, once, before expiry."""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chatgate.engines.gemini import GeminiEngine
from chatgate.engines.gemini.auth import GoogleCredentials
from chatgate.protocols import gemini as g
from tests.gemini.conftest import settings
from tests.gemini.fake import FakeGemini

OK = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP", "index": 0}]}


class FakeCredentials:
    def __init__(self, lifetime: datetime.timedelta) -> None:
        self.token: str | None = None
        self.expiry: datetime.datetime | None = None
        self.lifetime = lifetime
        self.refreshes: list[int] = []

    def refresh(self, request: Any) -> None:
        self.refreshes.append(threading.get_ident())
        self.token = f"token-{len(self.refreshes)}"
        self.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + self.lifetime


async def test_refresh_runs_off_the_event_loop_once_for_concurrent_requests() -> None:
    creds = FakeCredentials(datetime.timedelta(hours=1))
    auth = GoogleCredentials(lambda: creds)
    headers = await asyncio.gather(*(auth.headers() for _ in range(5)))
    assert all(h == {"Authorization": "Bearer token-1"} for h in headers)
    assert len(creds.refreshes) == 1 and creds.refreshes[0] != threading.get_ident()
    await auth.headers()
    assert len(creds.refreshes) == 1  # still fresh: no new refresh


async def test_a_token_close_to_expiry_is_refreshed_first() -> None:
    creds = FakeCredentials(datetime.timedelta(minutes=2))  # inside the refresh margin
    auth = GoogleCredentials(lambda: creds)
    assert await auth.headers() == {"Authorization": "Bearer token-1"}
    assert await auth.headers() == {"Authorization": "Bearer token-2"}


async def test_service_account_file_end_to_end(fake: FakeGemini, tmp_path: Path) -> None:
    """A service-account key file: google-auth signs a JWT, trades it at the token endpoint
    (the fake server here), and the engine sends the token it got."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = tmp_path / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "sa-project",
                "private_key_id": "1",
                "private_key": pem.decode(),
                "client_email": "sa@sa-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{fake.url}/token",
            }
        )
    )
    engine = GeminiEngine(settings(fake, project=None, access_token=None, credentials_file=str(path)))
    fake.reply(200, {"access_token": "ya29.fake", "expires_in": 3600, "token_type": "Bearer"})
    fake.reply(200, OK)
    request = g.GenerateContentRequest(contents=[g.Content(role="user", parts=[g.Part(text="hi")])])
    [chunk] = [c async for c in engine.generate("gemini-2.5-flash", request, stream=False)]
    await engine.aclose()
    token_request, call = fake.seen
    assert token_request.path == "/token" and b"grant_type" in token_request.body
    assert call.headers["authorization"] == "Bearer ya29.fake"
    assert call.path.startswith("/v1beta1/projects/sa-project/locations/us-central1/")
