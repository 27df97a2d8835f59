"""An upstream's ``/models`` answer, normalised to OpenAI model objects."""

from __future__ import annotations

import msgspec

from chatgate.protocols import openai as o


class _Listed(msgspec.Struct):
    id: str
    created: int | None = None
    owned_by: str | None = None


class _Listing(msgspec.Struct):
    data: list[_Listed] = msgspec.field(default_factory=list)


_decoder = msgspec.json.Decoder(_Listing)


def model_objects(body: bytes, owner: str) -> list[o.Model]:
    """The models an upstream lists (``owner`` where it names none); none if the body is not
    an OpenAI model list."""
    try:
        listing = _decoder.decode(body)
    except msgspec.DecodeError:
        return []
    return [o.Model(id=m.id, created=m.created or 0, owned_by=m.owned_by or owner) for m in listing.data]


def with_default(listed: list[o.Model], default: str | None, owner: str) -> list[o.Model]:
    """The configured default model first, added if the upstream does not list it."""
    if default and all(m.id != default for m in listed):
        return [o.Model(id=default, created=0, owned_by=owner), *listed]
    return listed
