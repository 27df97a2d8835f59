from __future__ import annotations

import pytest

from chatgate.errors import Unsupported
from chatgate.translate.capabilities import check, needs
from chatgate.translate.request import to_gemini
from tests.translate.util import req


def _request(**fields: object):  # type: ignore[no-untyped-def]
    return to_gemini(req(**fields), "google/gemini-2.5-flash")[0]


def test_a_text_request_needs_nothing() -> None:
    assert needs(_request()) == []


def test_needs_are_named_for_users() -> None:
    request = _request(
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": "gs://b/a.png"},
                                               {"type": "file", "file": {"file_id": "gs://b/a.pdf"}}]}],
        tools=[{"type": "function", "function": {"name": "f"}}], modalities=["text", "image"],
        extra_body={"google": {"tools": [{"google_search": {}}]}})
    assert needs(request) == ["image input", "document input", "function calling", "Google tool `googleSearch`", "image output"]


def test_check_names_the_first_missing_capability() -> None:
    request = _request(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": "gs://b/a.png"}]}])
    check(request, {"image input"}, "m")
    with pytest.raises(Unsupported) as err:
        check(request, {"function calling"}, "smollm")
    assert "image input" in err.value.message and err.value.status == 400
