"""Which engine answers a request: model names and endpoint ids resolved to targets."""

from __future__ import annotations

import time
from dataclasses import dataclass

from chatgate.config import Settings
from chatgate.engines.base import Engine, ModelServer
from chatgate.engines.gemini import GeminiEngine
from chatgate.errors import InvalidRequest, NotFound
from chatgate.protocols import openai as o

GOOGLE_PREFIX = "google/"
OPENAPI = "openapi"  # the endpoint id of Gemini and local models in Vertex URLs


@dataclass(frozen=True, slots=True)
class Target:
    engine: Engine
    model: str  # the name the engine knows
    # The served model as configured: what metrics count it under. Never the client's raw
    # string (which may be any case, an alias, or any label on an endpoint route).
    label: str


class Targets:
    def __init__(self, settings: Settings, local: ModelServer, gemini: GeminiEngine | None = None) -> None:
        self._settings = settings
        self._local = local
        self._gemini = gemini  # None when [gemini] holds no credentials
        self._created = int(time.time())

    def model(self, name: str | None) -> Target:
        """The target for a ``model`` field on the openapi route."""
        if not name:
            raise InvalidRequest("`model` is required on this route", param="model")
        local = self._local.resolve(name)
        if local is not None:
            return Target(self._local, local, local)
        if name.startswith(GOOGLE_PREFIX):
            if self._gemini is not None:
                # Gemini answers only for the models it has (404 otherwise, before any usage).
                return Target(self._gemini, name[len(GOOGLE_PREFIX) :], name)
            fallback = self._settings.gemini.local_fallback
            if fallback:
                served = self._local.resolve(fallback) or fallback
                return Target(self._local, served, served)
            raise NotFound(
                f"model {name!r} needs Gemini, which is not configured: set [gemini] api_key (Gemini API) "
                "or project with credentials (Vertex AI) in the config file, or CHATGATE_GEMINI_* "
                f"variables. This server serves: {', '.join(self.served())}",
                param="model",
                code="model_not_found",
            )
        raise NotFound(
            f"model {name!r} is not served here; available: {', '.join(self.served())}",
            param="model",
            code="model_not_found",
        )

    def endpoint(self, endpoint_id: str, name: str | None) -> Target:
        """The target for a self-deployed endpoint served by a local model."""
        endpoint = self._settings.endpoints.get(endpoint_id)
        if endpoint is None or not endpoint.model:
            raise NotFound(
                f"endpoint {endpoint_id!r} does not exist; configured: {', '.join(sorted(self._settings.endpoints))}",
                code="endpoint_not_found",
            )
        bound = self._local.resolve(endpoint.model) or endpoint.model
        # A name the endpoint does not know is the client's label, as containers treat it;
        # only another local model's name is a mistake worth saying.
        named = self._local.resolve(name) if name else None
        if named is not None and named != bound:
            raise NotFound(
                f"endpoint {endpoint_id!r} serves {endpoint.model!r}, not {name!r}",
                param="model",
                code="model_not_found",
            )
        return Target(self._local, bound, bound)

    @property
    def gemini(self) -> GeminiEngine | None:
        return self._gemini

    @property
    def local(self) -> ModelServer:
        return self._local

    def served(self) -> list[str]:
        return self._local.names()

    async def all_served(self) -> list[str]:
        """The local models, then Gemini's as ``google/<id>`` (Google's listing, cached) when
        Gemini is configured; a local model's name wins over Gemini's."""
        local = self.served()
        if self._gemini is None:
            return local
        google = [GOOGLE_PREFIX + model for model in await self._gemini.models()]
        return local + [name for name in google if self._local.resolve(name) is None]

    async def listing(self) -> o.ModelList:
        return o.ModelList(
            data=[
                o.Model(id=name, created=self._created, owned_by=name.partition("/")[0] or "chatgate")
                for name in await self.all_served()
            ]
        )

    def endpoint_listing(self, endpoint_id: str) -> o.ModelList:
        target = self.endpoint(endpoint_id, None)
        return o.ModelList(data=[o.Model(id=target.model, created=self._created, owned_by=endpoint_id)])
