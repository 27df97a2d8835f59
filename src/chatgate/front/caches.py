"""``cachedContents``: Google's context caching API, on local models and passed through to Gemini.

Routes (errors in Google's shape, ``render.google_errors``):

- Vertex AI: ``/{v1,v1beta1}/projects/{p}/locations/{l}/cachedContents`` (POST create, GET
  list) and ``.../cachedContents/{id}`` (GET, PATCH, DELETE);
- the Gemini API: ``/{v1,v1beta,v1alpha}/cachedContents[/{id}]``, under ``server.default_project``.

A cache whose ``model`` is a local model is pinned in that model's KV cache
(``LocalEngine.pin``) and kept in ``cachestore.CacheStore``; one for a Gemini model is created
at Google with chatgate's credentials, its names rewritten between Google's project and the
client's. Generating with a cache goes through ``expand``, which every generate route calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatgate.engines.gemini import GeminiEngine
from chatgate.engines.local.engine import Pinned
from chatgate.errors import InvalidRequest, NotFound, Unsupported
from chatgate.front import projects
from chatgate.front.body import check_nesting, decode_object, read_body
from chatgate.front.cachestore import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_TTL,
    MAX_PAGE_SIZE,
    Cache,
    CacheStore,
    new_id,
    page_token,
    parse_duration,
    parse_page_token,
    parse_timestamp,
    timestamp,
)
from chatgate.front.render import google_errors
from chatgate.front.state import AppState
from chatgate.front.targets import Target
from chatgate.protocols import gemini as g

VERSIONS = ("v1", "v1beta1")
VERTEX = "/{version}/projects/{project}/locations/{location}/cachedContents"
GEMINI_API = "/{version}/cachedContents"
GEMINI_API_VERSIONS = ("v1", "v1beta", "v1alpha")

# Fields of a CachedContent body: what a client may set, and what it may send back unchanged.
_SETTABLE = frozenset(
    ("model", "displayName", "contents", "systemInstruction", "tools", "toolConfig", "ttl", "expireTime")
)
_OUTPUT_ONLY = frozenset(("name", "createTime", "updateTime", "usageMetadata"))
_GOOGLE_ONLY = frozenset(("encryptionSpec",))  # meaningful at Google only
_UPDATABLE = {"ttl": "ttl", "expireTime": "expireTime", "expire_time": "expireTime"}

_MODEL = re.compile(r"(?:projects/[^/]+/locations/[^/]+/)?publishers/(?P<publisher>[^/]+)/models/(?P<model>.+)")
_CACHE = re.compile(r"(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?cachedContents/(?P<id>[^/]+)")


@runtime_checkable
class Pins(Protocol):
    """An engine that keeps prompt prefixes (the local engine)."""

    async def pin(self, model: str, request: g.GenerateContentRequest) -> Pinned: ...

    def unpin(self, pinned: Pinned) -> None: ...


@dataclass(frozen=True, slots=True)
class Where:
    """The project and form of a route: Vertex (``location`` set) or the Gemini API."""

    project: str
    location: str | None

    def name(self, cache_id: str) -> str:
        if self.location is None:
            return f"cachedContents/{cache_id}"
        return f"projects/{self.project}/locations/{self.location}/cachedContents/{cache_id}"

    def model(self, shown: str) -> str:
        """``publisher/model`` as this form names a model."""
        if self.location is None:
            return f"models/{shown.removeprefix('google/')}"
        publisher, _, model = shown.partition("/")
        if not model:
            publisher, model = "google", shown
        return f"projects/{self.project}/locations/{self.location}/publishers/{publisher}/models/{model}"


def store(state: AppState) -> CacheStore:
    return state.caches


def _where(request: Request, state: AppState) -> Where:
    params = request.path_params
    if params.get("version") not in (VERSIONS if "location" in params else GEMINI_API_VERSIONS):
        raise NotFound(f"no route for {request.method} {request.url.path}", code="unknown_url")
    if "location" not in params:
        return Where(state.settings.server.default_project, None)
    return Where(params["project"], params["location"])


def _json(value: Any) -> Response:
    body = value if isinstance(value, bytes) else g.encoder.encode(value)
    return Response(body, media_type="application/json")


# --- routes ------------------------------------------------------------------------------------


@google_errors
async def collection(request: Request) -> Response:
    state: AppState = request.app.state.chatgate
    where = _where(request, state)
    state.auth.check(request.headers, where.project)
    if request.method == "POST":
        return _json(await _create(request, state, where))
    return _json(await _list(request, state, where))


@google_errors
async def resource(request: Request) -> Response:
    state: AppState = request.app.state.chatgate
    where = _where(request, state)
    state.auth.check(request.headers, where.project)
    cache_id = request.path_params["id"]
    caches = store(state)
    local = caches.find(where.project, cache_id)
    if local is not None and where.location is not None and local.location not in (None, where.location):
        local = None
    if local is None:
        return _json(await _google_resource(request, state, where, cache_id))
    if request.method == "GET":
        return _json(_render(local, where))
    if request.method == "DELETE":
        caches.remove(where.project, cache_id)
        return _json(b"{}")
    fields = await _body(request, state)
    expire = _expiry(_update(request, fields), caches.clock())
    if expire is None:
        raise InvalidRequest("give the new expiration: `ttl` or `expireTime`", param="ttl")
    local.expire_time = expire
    local.update_time = caches.clock()
    return _json(_render(local, where))


def routes() -> list[Route]:
    return [
        Route(VERTEX, collection, methods=["GET", "POST"]),
        Route(VERTEX + "/{id}", resource, methods=["GET", "PATCH", "DELETE"]),
        Route(GEMINI_API, collection, methods=["GET", "POST"]),
        Route(GEMINI_API + "/{id}", resource, methods=["GET", "PATCH", "DELETE"]),
    ]


# --- create, list --------------------------------------------------------------------------------


async def _create(request: Request, state: AppState, where: Where) -> g.CachedContent | dict[str, Any]:
    fields = await _body(request, state)
    model = fields.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("`model` is required: the model the cache is for", param="model")
    shown, target = _target(state, model)
    if isinstance(target.engine, GeminiEngine):
        return await _google_create(state, where, target, fields)
    now = store(state).clock()
    expire = _expiry(fields, now)
    body = _decode(fields)
    for key in sorted(_GOOGLE_ONLY & fields.keys()):
        raise Unsupported(f"`{key}` applies to Gemini caches, not to local model {shown!r}", param=key)
    if not isinstance(target.engine, Pins):
        raise Unsupported(f"model {shown!r} cannot keep context caches", param="model")
    store(state).room()
    cache = Cache(
        id=new_id(),
        project=where.project,
        location=where.location,
        model=target.model,
        shown_model=shown,
        display_name=body.display_name,
        contents=body.contents or [],
        system_instruction=body.system_instruction,
        tools=body.tools,
        tool_config=body.tool_config,
        create_time=now,
        update_time=now,
        expire_time=expire if expire is not None else now + DEFAULT_TTL,
        pinned=Pinned(model=target.model, key=0, tokens=0, size=0),
    )
    cache.pinned = await target.engine.pin(target.model, cache.prefix())
    store(state).add(cache)
    return _render(cache, where)


async def _list(request: Request, state: AppState, where: Where) -> g.ListCachedContentsResponse | dict[str, Any]:
    size_text = request.query_params.get("pageSize", "")
    try:
        size = int(size_text) if size_text else DEFAULT_PAGE_SIZE
    except ValueError:
        raise InvalidRequest(f"pageSize must be an integer, not {size_text!r}", param="pageSize") from None
    if size < 0:
        raise InvalidRequest("pageSize must not be negative", param="pageSize")
    size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    token = request.query_params.get("pageToken")
    kind, position = parse_page_token(token) if token else ("local", "0")
    if kind == "google":
        return await _google_list(state, where, size, position)
    # Local caches first, then (on the same page when there is room) the Gemini ones.
    mine = store(state).listing(where.project, where.location)
    start = int(position)
    page = mine[start : start + size]
    out = g.ListCachedContentsResponse(cached_contents=[_render(c, where) for c in page])
    if start + size < len(mine):
        out.next_page_token = page_token("local", str(start + size))
        return out
    if _gemini(state, where) is None or not _owned(state, where):
        return out
    if len(page) == size:
        out.next_page_token = page_token("google", "")
        return out
    google = await _google_list(state, where, size - len(page), "")
    listed = [msgspec.to_builtins(c) for c in out.cached_contents] + google.get("cachedContents", [])
    return {"cachedContents": listed, **{k: v for k, v in google.items() if k == "nextPageToken"}}


# --- the body ------------------------------------------------------------------------------------


async def _body(request: Request, state: AppState) -> dict[str, Any]:
    raw = await read_body(request, state.settings.server.max_body_bytes, state.settings.server.body_timeout)
    check_nesting(raw)
    fields = decode_object(raw)
    for key in fields:
        if key not in _SETTABLE | _OUTPUT_ONLY | _GOOGLE_ONLY:
            raise InvalidRequest(
                f"Invalid JSON payload received. Unknown name \"{key}\" at 'cached_content': Cannot find field.",
                param=key,
            )
    return fields


def _decode(fields: dict[str, Any]) -> g.CachedContent:
    settable = {k: v for k, v in fields.items() if k in _SETTABLE}
    try:
        return msgspec.convert(settable, g.CachedContent)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `$")
        path = where.rstrip("`").removeprefix(".") if message else None
        at = f" at `{path}`" if path else ""
        raise InvalidRequest(f"invalid cached content{at}: {message or exc}", param=path or None) from None


def _expiry(fields: dict[str, Any], now: float) -> float | None:
    """``ttl`` or ``expireTime`` (not both) → when the cache expires; None when neither is given."""
    ttl, expire = fields.get("ttl"), fields.get("expireTime")
    if ttl is not None and expire is not None:
        raise InvalidRequest("give `ttl` or `expireTime`, not both", param="ttl")
    if ttl is not None:
        if not isinstance(ttl, str):
            raise InvalidRequest('ttl must be a duration string such as "3600s"', param="ttl")
        return now + parse_duration(ttl, "ttl")
    if expire is not None:
        if not isinstance(expire, str):
            raise InvalidRequest("expireTime must be an RFC 3339 timestamp string", param="expireTime")
        when = parse_timestamp(expire, "expireTime")
        if when <= now:
            raise InvalidRequest(f"expireTime {expire!r} is in the past", param="expireTime")
        return when
    return None


def _update(request: Request, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a PATCH changes: those of ``updateMask`` when it is given."""
    mask = request.query_params.get("updateMask")
    if mask is None:
        return fields
    chosen: dict[str, Any] = {}
    for path in filter(None, (p.strip() for p in mask.split(","))):
        name = _UPDATABLE.get(path)
        if name is None:
            raise InvalidRequest(
                f"updateMask may name ttl or expireTime (the expiration is all that changes), not {path!r}",
                param="updateMask",
            )
        if name in fields:
            chosen[name] = fields[name]
    return chosen


def _target(state: AppState, model: str) -> tuple[str, Target]:
    """A cache's ``model`` (``projects/.../publishers/p/models/m``, ``publishers/p/models/m``,
    ``models/m``, or a name) → (``publisher/model``, its target)."""
    matched = _MODEL.fullmatch(model)
    name = f"{matched['publisher']}/{matched['model']}" if matched else model.removeprefix("models/")
    try:
        return name, state.targets.model(name)
    except NotFound:
        if "/" in name:
            raise
    return f"google/{name}", state.targets.model(f"google/{name}")


def _render(cache: Cache, where: Where) -> g.CachedContent:
    return g.CachedContent(
        name=where.name(cache.id),
        display_name=cache.display_name,
        model=where.model(cache.shown_model),
        create_time=timestamp(cache.create_time),
        update_time=timestamp(cache.update_time),
        expire_time=timestamp(cache.expire_time),
        usage_metadata=g.CachedContentUsage(total_token_count=cache.pinned.tokens),
    )


# --- using a cache -------------------------------------------------------------------------------

# Where each field of a generate request sits, as the route's clients name it.
GOOGLE_PARAMS = {
    "cachedContent": "cachedContent",
    "systemInstruction": "systemInstruction",
    "tools": "tools",
    "toolConfig": "toolConfig",
}
OPENAI_PARAMS = {
    "cachedContent": "extra_body.google.cached_content",
    "systemInstruction": "messages",
    "tools": "tools",
    "toolConfig": "tool_choice",
}


def expand(
    state: AppState,
    project: str,
    target: Target,
    request: g.GenerateContentRequest,
    params: dict[str, str] = GOOGLE_PARAMS,
) -> g.GenerateContentRequest:
    """``request`` with the cache it names applied, for ``target``; the request itself when it
    names none. A local cache's contents come first and its systemInstruction, tools and
    toolConfig apply (a request setting its own is a 400, as at Google); a Gemini cache this
    project created is named as Google knows it. Any other name is a 404, except on a Gemini
    target, where it goes to Google as it is (``[gemini] allowed_cached_contents`` rules)."""
    named = request.cached_content
    if not named:
        return request
    matched = _CACHE.fullmatch(named)
    mine = matched is not None and matched["project"] in (None, project)
    caches = store(state)
    cache_id = matched["id"] if matched is not None else ""
    if isinstance(target.engine, GeminiEngine):
        google = caches.google_name(project, cache_id) if mine else None
        if google is not None:
            return msgspec.structs.replace(request, cached_content=google)
        owner = caches.owners.get(named.rpartition("/")[2])
        if owner is not None and owner[0] != project:
            raise NotFound(f"cached content {named!r} not found", param=params["cachedContent"], code="cache_not_found")
        return request
    cache = caches.find(project, cache_id) if mine else None
    if cache is None:
        raise NotFound(
            f"cached content {named!r} not found (it may have expired)",
            param=params["cachedContent"],
            code="cache_not_found",
        )
    if cache.model != target.model:
        raise InvalidRequest(
            f"cached content {named!r} is for model {cache.shown_model!r}, not {target.label!r}",
            param=params["cachedContent"],
        )
    for field, value in (
        ("systemInstruction", request.system_instruction),
        ("tools", request.tools),
        ("toolConfig", request.tool_config),
    ):
        if value:
            raise InvalidRequest(
                "CachedContent can not be used with GenerateContent request setting system_instruction, "
                "tools or tool_config; put them in the cache instead",
                param=params[field],
            )
    return msgspec.structs.replace(
        request,
        contents=[*cache.contents, *request.contents],
        system_instruction=cache.system_instruction,
        tools=cache.tools,
        tool_config=cache.tool_config,
        cached_content=None,
    )


# --- Gemini caches: passed through to Google -------------------------------------------------------


def _gemini(state: AppState, where: Where) -> GeminiEngine | None:
    engine = state.targets.gemini
    if not isinstance(engine, GeminiEngine):
        return None
    projects.check(state.settings.gemini.projects, where.project, "Gemini")
    return engine


def _owned(state: AppState, where: Where) -> bool:
    return any(owner == where.project for owner, _ in store(state).owners.values())


def _from_google(answer: dict[str, Any], where: Where) -> dict[str, Any]:
    """A CachedContent from Google, named as the client knows it."""
    out = dict(answer)
    if isinstance(out.get("name"), str):
        out["name"] = where.name(out["name"].rpartition("/")[2])
    if isinstance(out.get("model"), str):
        out["model"] = where.model("google/" + out["model"].rpartition("/")[2])
    return out


async def _google_create(state: AppState, where: Where, target: Target, fields: dict[str, Any]) -> dict[str, Any]:
    engine = _gemini(state, where)
    assert engine is not None
    body = {k: v for k, v in fields.items() if k not in _OUTPUT_ONLY}
    body["model"] = engine.model_resource(target.model)
    answer = await engine.caches("POST", body=body)
    name = answer.get("name")
    if isinstance(name, str):
        store(state).owners[name.rpartition("/")[2]] = (where.project, name)
    return _from_google(answer, where)


async def _google_resource(request: Request, state: AppState, where: Where, cache_id: str) -> dict[str, Any]:
    caches = store(state)
    engine = _gemini(state, where)
    if engine is None or caches.google_name(where.project, cache_id) is None:
        raise NotFound(f"cached content {cache_id!r} not found (it may have expired)", code="cache_not_found")
    if request.method == "GET":
        return _from_google(await engine.caches("GET", cache_id), where)
    if request.method == "DELETE":
        await engine.caches("DELETE", cache_id)
        caches.owners.pop(cache_id, None)
        return {}
    fields = await _body(request, state)
    body = {k: v for k, v in fields.items() if k in _SETTABLE and k != "model"}
    mask = request.query_params.get("updateMask")
    if mask is None:
        mask = ",".join(k for k in ("ttl", "expireTime") if k in body)
    _update(request, fields)  # the same 400s as a local cache's
    answer = await engine.caches("PATCH", cache_id, body=body, query={"updateMask": mask} if mask else None)
    return _from_google(answer, where)


async def _google_list(state: AppState, where: Where, size: int, position: str) -> dict[str, Any]:
    engine = _gemini(state, where)
    if engine is None:
        return {}
    query = {"pageSize": str(size)}
    if position:
        query["pageToken"] = position
    answer = await engine.caches("GET", query=query)
    caches = store(state)
    found = answer.get("cachedContents")
    listed = [
        _from_google(item, where)
        for item in (found if isinstance(found, list) else [])
        if isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and caches.google_name(where.project, item["name"].rpartition("/")[2]) == item["name"]
    ]
    out: dict[str, Any] = {"cachedContents": listed} if listed else {}
    after = answer.get("nextPageToken")
    if isinstance(after, str) and after:
        out["nextPageToken"] = page_token("google", after)
    return out
