from __future__ import annotations

import pytest

from chatgate import config
from chatgate.errors import InvalidRequest, NotFound
from chatgate.front.targets import Targets


class TwoModels:
    """The part of the local engine Targets asks: names and aliases."""

    names_ = {"a": "org/a", "org/a": "org/a", "b": "org/b", "org/b": "org/b"}

    def resolve(self, name: str) -> str | None:
        return self.names_.get(name)

    def names(self) -> list[str]:
        return ["org/a", "org/b"]


def targets() -> Targets:
    settings = config.load(None, environ={}, overrides={"endpoints": {"ep": {"model": "a"}}})
    return Targets(settings, TwoModels())


def test_endpoint_serves_its_model_with_or_without_a_name() -> None:
    assert targets().endpoint("ep", None).model == "org/a"
    assert targets().endpoint("ep", "org/a").model == "org/a"
    assert targets().endpoint("ep", "a").model == "org/a"
    assert targets().endpoint("ep", "my-label").model == "org/a"  # a name it does not know is a label


def test_endpoint_refuses_another_local_models_name() -> None:
    with pytest.raises(NotFound) as err:
        targets().endpoint("ep", "b")
    assert err.value.param == "model"


def test_unknown_endpoint_and_missing_model() -> None:
    with pytest.raises(NotFound):
        targets().endpoint("nope", None)
    with pytest.raises(InvalidRequest):
        targets().model(None)
