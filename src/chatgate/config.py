"""Settings: a TOML file, then ``CHATGATE_<SECTION>_<KEY>`` environment variables, then flags.

Later sources win. Every key is declared here once, with its type and default; a wrong key
or value is a ``ConfigError`` naming it (``server.port: Expected `int`, got `str```), raised
before anything starts.

    [server]    host, port, max_body_bytes, default_project, log_level, allowed_hosts,
                header_timeout, body_timeout, keep_alive_timeout, max_connections, max_header_bytes,
                request_timeout, shutdown_timeout
    [auth]      enabled, api_keys, keys (scoped to projects), state_dir, max_token_lifetime
    [gemini]    mode, project, location, credentials_file, api_key, access_token, base_url,
                projects, allowed_file_uris, allowed_cached_contents, allowed_retrieval, ...
    [local]     enabled; parallel, queue_size, threads, context_size, extra_buffers,
                max_output_tokens, loop_control, text_loop_control, tool_decision, tool_call_bias: defaults for
                every local model; cache_memory, max_caches: what context caches (cachedContents) may keep
    [models.<name>]     a local model: engine, path or package, threads, context_size, ...
    [endpoints.<id>]    a self-deployed endpoint: upstreams (base URLs) or a local model
    [limits]    default_output_tokens; [limits.default], [limits.projects.<p>], [limits.keys.<name>],
                [limits.endpoints.<id>]: requests_per_minute, tokens_per_minute, concurrent
    [state]     redis_url, on_error, key_prefix, timeout: where limits and revocations are shared
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

EMBEDDED_MODEL = "huggingfacetb/smollm2-135m-instruct"
DEFAULT_ENDPOINT = "local"


class ConfigError(Exception):
    """Invalid configuration; the message names the key."""


class _Section(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 32 * 1024 * 1024
    # The project the short /v1/chat/completions and /v1/models aliases stand for.
    default_project: str = "default"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Host names (any port) requests may name in their Host header; "*" for any. Unset: any
    # when auth is on, loopback names only when it is off (DNS rebinding).
    allowed_hosts: list[str] | None = None
    # Slow clients: seconds to send the request line and headers, to send the whole body (a
    # 408 after), and to keep an idle keep-alive connection; connections at once (more get a 503).
    header_timeout: Annotated[float, Meta(gt=0)] = 10.0
    body_timeout: Annotated[float, Meta(gt=0)] = 60.0
    keep_alive_timeout: Annotated[float, Meta(gt=0)] = 5.0
    max_connections: Annotated[int, Meta(ge=1)] = 1024
    # The request line and headers together, in bytes.
    max_header_bytes: Annotated[int, Meta(ge=1024)] = 64 * 1024
    # Seconds a chat request may take from its body read to its last byte (queue, generation,
    # relay): then a 504, or a stream's final error event. Vertex's online deadline is 600 s.
    request_timeout: Annotated[float, Meta(gt=0)] = 600.0
    # Seconds the requests in flight get to finish after a SIGTERM; then they end (503, or a
    # stream's final error event) and the process exits.
    shutdown_timeout: Annotated[float, Meta(ge=0)] = 5.0


class ScopedKey(_Section):
    key: str
    # What metrics, logs and [limits.keys.<name>] call this key (never the key itself).
    name: str | None = None
    projects: list[str] = msgspec.field(default_factory=lambda: ["*"])


class AuthSettings(_Section):
    enabled: bool = True
    # Static keys valid for every project.
    api_keys: list[str] = msgspec.field(default_factory=list)
    # Static keys limited to some projects.
    keys: list[ScopedKey] = msgspec.field(default_factory=list)
    # Where the token-signing secret lives; default: $XDG_STATE_HOME/chatgate or ~/.local/state/chatgate.
    state_dir: str | None = None
    # Seconds a token may live at most: `chatgate token --lifetime` beyond it is an error,
    # and the server refuses tokens minted for longer.
    max_token_lifetime: Annotated[int, Meta(ge=60)] = 24 * 3600


class GeminiSettings(_Section):
    """``[gemini]``: how to reach Gemini (Vertex AI or the Gemini API) and with what credentials.

    ``retry_backoff`` is the base delay of the backoff between retries of a 429/503.
    """

    mode: Literal["vertex", "gemini-api"] = "vertex"
    project: str | None = None
    location: str = "us-central1"
    credentials_file: str | None = None
    api_key: str | None = None
    access_token: str | None = None
    base_url: str | None = None
    api_version: str | None = None  # default: v1beta1 on Vertex, v1beta on the Gemini API
    timeout: Annotated[float, Meta(gt=0)] = 600.0
    connect_timeout: Annotated[float, Meta(gt=0)] = 10.0
    max_retries: Annotated[int, Meta(ge=0)] = 2
    # Base delay (seconds) of the exponential backoff between retries of a 429/503 when
    # Google sends no Retry-After; the n-th retry waits about retry_backoff * 2**n.
    retry_backoff: Annotated[float, Meta(ge=0)] = 0.5
    # Use Application Default Credentials when nothing else is given.
    use_adc: bool = False
    # A local model that answers for google/* names when Gemini is not configured (offline tests).
    local_fallback: str | None = None
    # Send "skip_thought_signature_validator" for model function calls that lack a signature.
    skip_thought_signature_validator: bool = False
    # The chatgate projects (URL label) whose requests may use Gemini.
    projects: list[str] = msgspec.field(default_factory=lambda: ["*"])
    # What a request may make Google read under chatgate's identity; unset: anything.
    # URI prefixes of file parts (gs://bucket/dir/, https://...), prefixes of cached-content
    # names, prefixes of RAG corpus and search datastore/engine names.
    allowed_file_uris: list[str] | None = None
    allowed_cached_contents: list[str] | None = None
    allowed_retrieval: list[str] | None = None
    # Requests sent to Google at once, and how many more may wait before further ones get a 429.
    max_concurrency: Annotated[int, Meta(ge=1)] = 64
    queue_size: Annotated[int, Meta(ge=0)] = 256


class LocalSettings(_Section):
    # false: serve no local model (a server that only relays to endpoints or Gemini).
    enabled: bool = True
    # Requests one model generates at once: sequences of its one llama.cpp context, decoded
    # together (continuous batching).
    parallel: Annotated[int, Meta(ge=1, le=64)] = 2
    queue_size: Annotated[int, Meta(ge=0)] = 16
    threads: Annotated[int, Meta(ge=1)] | None = None
    context_size: Annotated[int, Meta(ge=128)] = 4096
    # llama.cpp's extra CPU buffer types (AMX, repacked weights): "auto" probes them in a child
    # process before serving (engines/local/probe.py); "on" and "off" decide without a probe.
    extra_buffers: Literal["auto", "on", "off"] = "auto"
    # Tokens an answer may have when the request names no max_tokens (a small model may
    # otherwise write until the context is full).
    max_output_tokens: Annotated[int, Meta(ge=1)] = 1024
    # Loop control: the strength of llama.cpp's DRY sampler under a grammar (JSON answers,
    # tool-call arguments) and for free text; 0 turns it off.
    loop_control: Annotated[float, Meta(ge=0, le=10)] = 0.8
    text_loop_control: Annotated[float, Meta(ge=0, le=10)] = 0.0
    # Bytes of KV state each local model may keep for context caches (cachedContents, their
    # prompt prefixes pinned in the engine); a number or a string such as "256MiB". Beyond it,
    # creating a cache is a 429.
    cache_memory: Annotated[int, Meta(ge=0)] | str = 256 * 1024 * 1024
    # Context caches kept at once, whatever their size.
    max_caches: Annotated[int, Meta(ge=0)] = 1024
    # Tool choice AUTO: "decide" (chatgate decides between a call and text before the
    # answer starts, engines/local/decide.py) or "free" (the model's own choice, which small
    # models seldom make for a call).
    tool_decision: Literal["decide", "free"] = "decide"
    # "decide": a call when log P(the call's opener) + this bias > 0; more calls as it grows.
    # Measured on the embedded model (bench/tool_choice.py); another model may want its own.
    tool_call_bias: Annotated[float, Meta(ge=-100, le=100)] = 7.45


class ModelSettings(_Section):
    engine: Literal["local"] = "local"
    path: str | None = None  # a GGUF file
    package: str | None = None  # an installed Python package that carries a GGUF
    threads: Annotated[int, Meta(ge=1)] | None = None
    context_size: Annotated[int, Meta(ge=128)] | None = None
    queue_size: Annotated[int, Meta(ge=0)] | None = None
    parallel: Annotated[int, Meta(ge=1, le=64)] | None = None
    chat_template: str | None = None  # override the GGUF's own template
    extra_buffers: Literal["auto", "on", "off"] | None = None
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None
    loop_control: Annotated[float, Meta(ge=0, le=10)] | None = None
    text_loop_control: Annotated[float, Meta(ge=0, le=10)] | None = None
    tool_decision: Literal["decide", "free"] | None = None
    tool_call_bias: Annotated[float, Meta(ge=-100, le=100)] | None = None
    aliases: list[str] = msgspec.field(default_factory=list)


class EndpointSettings(_Section):
    upstreams: list[str] = msgspec.field(default_factory=list)
    model: str | None = None  # the default model name (upstreams) or the local model to serve
    api_key: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Seconds to wait for the upstream's first byte, and at most between two stream chunks.
    timeout: Annotated[float, Meta(gt=0)] = 60.0
    health_path: str = "/v1/models"
    health_interval: Annotated[float, Meta(gt=0)] = 5.0
    # Seconds to open a connection; a replica that cannot be reached in time is ejected.
    connect_timeout: Annotated[float, Meta(gt=0)] = 5.0
    # Requests in flight to this endpoint (all replicas together), and how many more may
    # wait for a slot before further ones get a 429.
    max_concurrency: Annotated[int, Meta(ge=1)] = 128
    queue_size: Annotated[int, Meta(ge=0)] = 128
    # The chatgate projects (URL label) whose requests may use this endpoint.
    projects: list[str] = msgspec.field(default_factory=lambda: ["*"])
    # Consecutive failures (probes, or requests that could not connect) that take a replica
    # out of rotation; one success brings it back.
    unhealthy_threshold: Annotated[int, Meta(ge=1)] = 3


class Limit(_Section):
    """One set of limits; unset: no limit of that kind."""

    requests_per_minute: Annotated[int, Meta(ge=1)] | None = None
    # Prompt and generated tokens together.
    tokens_per_minute: Annotated[int, Meta(ge=1)] | None = None
    # Requests in flight at once (a stream counts until it ends).
    concurrent: Annotated[int, Meta(ge=1)] | None = None


class LimitsSettings(_Section):
    """``[limits]``: quotas, checked before any engine work (``front/quota.py``).

    A request is charged against its project's limits (``projects.<p>``, else ``default``),
    its static key's (``keys.<name>``, a named ``[[auth.keys]]`` entry) and its endpoint's
    (``endpoints.<id>``, shared by every caller); all must admit it."""

    default: Limit = msgspec.field(default_factory=Limit)
    projects: dict[str, Limit] = msgspec.field(default_factory=dict)
    keys: dict[str, Limit] = msgspec.field(default_factory=dict)
    endpoints: dict[str, Limit] = msgspec.field(default_factory=dict)
    # Output tokens charged at admission when a request sets no max_tokens (settled to the
    # real usage when it ends).
    default_output_tokens: Annotated[int, Meta(ge=1)] = 1024
    # Seconds a concurrency slot is held at most if its replica dies before releasing it.
    lease_seconds: Annotated[float, Meta(gt=0)] = 900.0


class StateSettings(_Section):
    """``[state]``: where several replicas share quota counters and token revocations."""

    # redis://host:port/db (or rediss://); unset: in this process (and revocations in a file).
    redis_url: str | None = None
    # Without Redis: "open" serves with no shared limits (and warns), "closed" answers 503.
    on_error: Literal["open", "closed"] = "open"
    key_prefix: str = "chatgate"
    # Seconds to wait for Redis before taking it for gone.
    timeout: Annotated[float, Meta(gt=0)] = 0.5


class Settings(_Section):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    gemini: GeminiSettings = msgspec.field(default_factory=GeminiSettings)
    local: LocalSettings = msgspec.field(default_factory=LocalSettings)
    models: dict[str, ModelSettings] = msgspec.field(default_factory=dict)
    endpoints: dict[str, EndpointSettings] = msgspec.field(default_factory=dict)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    state: StateSettings = msgspec.field(default_factory=StateSettings)


# Sections whose scalar keys can be set from the environment.
_ENV_SECTIONS: dict[str, type[_Section]] = {
    "server": ServerSettings,
    "auth": AuthSettings,
    "gemini": GeminiSettings,
    "local": LocalSettings,
    "limits": LimitsSettings,
    "state": StateSettings,
}


# Keys holding lists: comma-separated in the environment.
_LIST_KEYS = frozenset(
    ("api_keys", "allowed_hosts", "projects", "allowed_file_uris", "allowed_cached_contents", "allowed_retrieval")
)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for section, cls in _ENV_SECTIONS.items():
        for key in cls.__struct_fields__:
            value = environ.get(f"CHATGATE_{section.upper()}_{key.upper()}")
            if value is None:
                continue
            if key in _LIST_KEYS:
                out.setdefault(section, {})[key] = [v.strip() for v in value.split(",") if v.strip()]
            else:
                out.setdefault(section, {})[key] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _path_of(error: msgspec.ValidationError) -> str:
    """``Expected `int`, got `str` - at `$.server.port``` → ``server.port: Expected ...``."""
    text = str(error)
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        return text
    return f"{where.rstrip('`').removeprefix('$.').removeprefix('$')}: {message}"


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the file (if any), the environment, then ``overrides`` (flags), in that order."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    data = _merge(data, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides)
    try:
        # strict=False lets environment strings stand for numbers and booleans.
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_path_of(exc)) from None
    _check(settings)
    settings.local.cache_memory = byte_size(settings.local.cache_memory, "local.cache_memory")
    if DEFAULT_ENDPOINT not in settings.endpoints and settings.local.enabled:
        # The endpoint id `local`, bound to the first local model: the embedded one by default.
        settings.endpoints[DEFAULT_ENDPOINT] = EndpointSettings(model=next(iter(settings.models), EMBEDDED_MODEL))
    return settings


def _check(settings: Settings) -> None:
    for endpoint_id, endpoint in settings.endpoints.items():
        if not endpoint.upstreams and not endpoint.model:
            raise ConfigError(f"endpoints.{endpoint_id}: give `upstreams` (base URLs) or `model` (a local model)")
        for url in endpoint.upstreams:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"endpoints.{endpoint_id}.upstreams: not an http(s) URL: {url!r}")
    if not settings.local.enabled:
        bound = [f"endpoints.{eid}" for eid, ep in settings.endpoints.items() if ep.model and not ep.upstreams]
        for what in [*(f"models.{name}" for name in settings.models), *bound]:
            raise ConfigError(f"{what}: a local model, but local.enabled is false")
        if settings.gemini.local_fallback:
            raise ConfigError("gemini.local_fallback: a local model, but local.enabled is false")
    names = [scoped.name for scoped in settings.auth.keys if scoped.name]
    if len(set(names)) != len(names):
        raise ConfigError("auth.keys: two keys share a name")
    for name in settings.limits.keys:
        if name not in names:
            raise ConfigError(f"limits.keys.{name}: no key in auth.keys has this name")
    if settings.state.redis_url and not settings.state.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("state.redis_url: not a redis://, rediss:// or unix:// URL")
    for name, model in settings.models.items():
        if model.path and model.package:
            raise ConfigError(f"models.{name}: give `path` or `package`, not both")
    if settings.gemini.local_fallback and settings.gemini.local_fallback not in settings.models:
        if settings.gemini.local_fallback != EMBEDDED_MODEL:
            raise ConfigError(f"gemini.local_fallback: no local model named {settings.gemini.local_fallback!r}")


_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def byte_size(value: int | str, key: str) -> int:
    """``268435456``, ``"268435456"``, ``"256MiB"`` or ``"0.5 GB"`` → bytes."""
    if isinstance(value, int):
        return value
    text = value.strip().lower().replace(" ", "")
    number = text.rstrip("kmgib")
    unit = text[len(number) :]
    try:
        size = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        raise ConfigError(f'{key}: not a size in bytes: {value!r} (say 268435456 or "256MiB")') from None
    if size < 0:
        raise ConfigError(f"{key}: must not be negative")
    return int(size)


def state_dir(settings: Settings) -> Path:
    if settings.auth.state_dir:
        return Path(settings.auth.state_dir).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "chatgate"
