from __future__ import annotations

import pytest

from chatgate.errors import InvalidRequest
from chatgate.front.body import decode_chat_request


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b'{"messages": [{"role": "user", "content": 1}]}', "messages[0].content"),
        (b'{"model": "m"}', "messages"),
        (b'{"messages": [{"role": "user"}]}', "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 9}', "temperature"),
        (b"[]", None),
    ],
)
def test_errors_name_the_json_path(raw: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as err:
        decode_chat_request(raw)
    assert err.value.param == param
    assert err.value.status == 400


def test_stream_options_need_stream() -> None:
    with pytest.raises(InvalidRequest) as err:
        decode_chat_request(
            b'{"messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}'
        )
    assert err.value.param == "stream_options"


def test_unknown_fields_are_ignored() -> None:
    request = decode_chat_request(b'{"messages": [{"role": "user", "content": "x"}], "frobnicate": 1}')
    assert request.messages[0].content == "x"
