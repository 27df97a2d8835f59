"""The Gemini engine: Vertex AI or the Gemini Developer API over REST.

It sends the canonical ``GenerateContentRequest`` as it is and yields Google's
``GenerateContentResponse`` chunks (see ``engines/base.py`` for the contract):

- Vertex AI: ``https://{location}-aiplatform.googleapis.com`` (``aiplatform.googleapis.com``
  for ``global``), ``/{v1beta1|v1}/projects/{p}/locations/{l}/publishers/google/models/{m}``;
  with an API key and no project, Vertex's express mode path without the project;
- the Gemini API: ``https://generativelanguage.googleapis.com/v1beta/models/{m}`` with
  ``x-goog-api-key``;
- ``:generateContent`` or ``:streamGenerateContent?alt=sse``; ``base_url`` replaces the host.

One pooled keep-alive client per engine, the relay's (``engines/httpclient.py``, aiohttp:
chosen by ``bench/gemini.py``). A 429 or 503 is retried with exponential backoff (or after
Google's ``Retry-After``) only while nothing has been yielded; closing the iterator closes
the upstream response at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import msgspec

from chatgate.config import GeminiSettings
from chatgate.engines.admission import Admission
from chatgate.engines.gemini import allow, auth, errors, sse
from chatgate.engines.gemini.listing import GoogleModels
from chatgate.engines.gemini.signatures import fill_missing_signatures
from chatgate.engines.http_errors import CLIENT_ERRORS, transport_error
from chatgate.engines.httpclient import HttpClient
from chatgate.errors import ChatgateError, InvalidRequest, UpstreamError
from chatgate.protocols import gemini as g
from chatgate.protocols.tuning import NO_TUNING, Tuning

log = logging.getLogger(__name__)

_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@\-]{0,127}")  # fullmatch: no trailing newline
_RETRIED = (429, 503)
# A Retry-After longer than this is not waited for: the client gets the 429 and decides.
MAX_RETRY_WAIT = 30.0

_decoder = msgspec.json.Decoder(g.GenerateContentResponse)
_count_decoder = msgspec.json.Decoder(g.CountTokensResponse)
_encoder = msgspec.json.Encoder()


def is_configured(settings: GeminiSettings) -> bool:
    """Whether the settings hold credentials to reach Gemini at all."""
    if settings.mode == "gemini-api":
        return bool(settings.api_key or settings.access_token)
    if settings.api_key:
        return True  # Vertex express mode
    return bool(settings.access_token or settings.credentials_file or settings.use_adc) and bool(
        settings.project or settings.credentials_file
    )


SETUP_HINT = (
    "Gemini is not configured. For Vertex AI set gemini.project and gemini.location plus "
    "gemini.credentials_file, gemini.access_token or gemini.use_adc = true "
    "(CHATGATE_GEMINI_PROJECT, CHATGATE_GEMINI_USE_ADC, ...); for the Gemini API set "
    'gemini.mode = "gemini-api" and gemini.api_key (CHATGATE_GEMINI_API_KEY).'
)


def _project_from_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None  # google-auth reports the real problem on first use
    project = info.get("project_id") or info.get("quota_project_id") if isinstance(info, dict) else None
    return project if isinstance(project, str) else None


def endpoint(
    settings: GeminiSettings, model: str, *, stream: bool, project: str | None = None, method: str | None = None
) -> str:
    """The URL of ``model``'s ``method`` (by default ``generateContent`` or its stream)."""
    method = method or ("streamGenerateContent?alt=sse" if stream else "generateContent")
    return f"{models_url(settings, project)}/{model}:{method}"


def models_url(settings: GeminiSettings, project: str | None = None, *, listing: bool = False) -> str:
    """Where Google's models are: ``.../publishers/google/models`` (Vertex; the listing is
    never under a project, as the google-genai SDK asks for it) or ``.../models`` (Gemini API)."""
    base = settings.base_url.rstrip("/") if settings.base_url else None
    if settings.mode == "gemini-api":
        version = settings.api_version or "v1beta"
        return f"{base or 'https://generativelanguage.googleapis.com'}/{version}/models"
    version = settings.api_version or "v1beta1"
    location = settings.location
    base = base or _vertex_host(location)
    project = project or settings.project
    if project is None or listing:
        return f"{base}/{version}/publishers/google/models"
    return f"{base}/{version}/projects/{project}/locations/{location}/publishers/google/models"


def _vertex_host(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def caches_base(settings: GeminiSettings, project: str | None) -> str:
    """Where Google keeps context caches: Vertex ``/v1/projects/{p}/locations/{l}/cachedContents``,
    the Gemini API ``/v1beta/cachedContents``."""
    base = settings.base_url.rstrip("/") if settings.base_url else None
    if settings.mode == "gemini-api":
        version = settings.api_version or "v1beta"
        return f"{base or 'https://generativelanguage.googleapis.com'}/{version}/cachedContents"
    version = settings.api_version or "v1"
    host = base or _vertex_host(settings.location)
    if project is None:
        return f"{host}/{version}/cachedContents"
    return f"{host}/{version}/projects/{project}/locations/{settings.location}/cachedContents"


def _substantive(response: g.GenerateContentResponse) -> bool:
    """Whether a chunk says anything: content, a finish reason, or a prompt verdict."""
    if not response.candidates:
        return response.prompt_feedback is not None
    return any((c.content is not None and c.content.parts) or c.finish_reason for c in response.candidates)


def _retry_after(error: ChatgateError) -> float | None:
    value = error.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class GeminiEngine:
    def __init__(self, settings: GeminiSettings) -> None:
        self.settings = settings
        self._auth = auth.from_settings(settings)
        self._project = settings.project
        if settings.mode == "vertex" and not self._project and settings.credentials_file and not settings.api_key:
            self._project = _project_from_file(settings.credentials_file)
        # settings.timeout bounds the wait for the first byte and each gap in a stream; proxy
        # variables are honoured, as google-auth's token requests honour them.
        self._client = HttpClient(
            connect_timeout=settings.connect_timeout, read_timeout=settings.timeout, trust_env=True
        )
        self.admission = Admission("Gemini", settings.max_concurrency, settings.queue_size)
        self.listing = GoogleModels(models_url(settings, self._project, listing=True), self._get)

    is_configured = staticmethod(is_configured)

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, model: str, *, stream: bool, method: str | None = None) -> str:
        project = None if (self.settings.api_key and not self.settings.project) else self._project
        return endpoint(self.settings, model, stream=stream, project=project, method=method)

    async def models(self) -> list[str]:
        """The ids of the models Google serves (``gemini-2.5-flash``), cached (``listing.py``)."""
        if self._auth is None:
            return []
        return await self.listing.ids()

    async def _get(self, url: str) -> tuple[int, bytes]:
        headers = await self._auth.headers()  # type: ignore[union-attr]  # models() checked it
        try:
            return await self._client.get(url, headers)
        except CLIENT_ERRORS as exc:
            raise transport_error(exc, "Gemini", self.settings.timeout, answering=False) from exc

    async def count_tokens(self, model: str, request: g.GenerateContentRequest) -> g.CountTokensResponse:
        """Google's ``countTokens`` for ``request``'s prompt, its answer as it is."""
        if not _MODEL_ID.fullmatch(model):
            raise InvalidRequest(f"not a Gemini model id: {model!r}", param="model")
        if self._auth is None:
            raise UpstreamError(SETUP_HINT, code="gemini_not_configured")
        allow.check(self.settings, request)
        request = self.prepare(request)
        if self.settings.mode == "gemini-api":  # the whole request, so tools and system count too
            counted = {"generateContentRequest": {"model": f"models/{model}", **msgspec.to_builtins(request)}}
        else:  # Vertex takes the request's fields beside contents
            counted = msgspec.to_builtins(
                g.CountTokensRequest(
                    contents=request.contents,
                    system_instruction=request.system_instruction,
                    tools=request.tools,
                    generation_config=request.generation_config,
                )
            )
        body = await self._exchange(
            "POST", self.url(model, stream=False, method="countTokens"), _encoder.encode(counted)
        )
        try:
            return _count_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"Gemini returned a malformed response: {exc}", code="malformed_response") from exc

    async def _exchange(self, method: str, url: str, body: bytes | None) -> bytes:
        """One request to Google, not retried, after admission: the body of a 200, else its
        error raised as a ``ChatgateError``."""
        assert self._auth is not None
        headers = {"Content-Type": "application/json", **(await self._auth.headers())}
        admitted = await self.admission.acquire()
        try:
            response = await self._client.send(method, url, headers, body)
            try:
                raw = await response.read()
                if response.status != 200:
                    raise errors.body_error(response.status, raw, response.headers.get("Retry-After"))
                return raw
            finally:
                response.close()
        except CLIENT_ERRORS as exc:
            raise transport_error(exc, "Gemini", self.settings.timeout, answering=False) from exc
        finally:
            self.admission.release(admitted)

    # --- context caches (cachedContents), passed through ------------------------------------

    def model_resource(self, model: str) -> str:
        """Google's resource name for the Gemini model ``model`` (as a cache names its model)."""
        if self.settings.mode == "gemini-api" or not self._project:
            return f"models/{model}"
        return f"projects/{self._project}/locations/{self.settings.location}/publishers/google/models/{model}"

    async def caches(
        self,
        method: str,
        cache_id: str | None = None,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call to Google's cachedContents API (create, list, get, patch, delete): the JSON
        it answers, or its error raised as a ``ChatgateError``."""
        if self._auth is None:
            raise UpstreamError(SETUP_HINT, code="gemini_not_configured")
        url = caches_base(
            self.settings, None if (self.settings.api_key and not self.settings.project) else self._project
        )
        if cache_id is not None:
            url += f"/{cache_id}"
        if query:
            url += "?" + urlencode(query)
        raw = await self._exchange(method, url, json.dumps(body).encode() if body else None)
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise UpstreamError("Gemini returned a malformed cachedContents answer", code="malformed_response")
        return answer

    def prepare(self, request: g.GenerateContentRequest) -> g.GenerateContentRequest:
        """The request as this surface takes it."""
        if self.settings.skip_thought_signature_validator:
            request = msgspec.structs.replace(
                request,
                contents=[
                    msgspec.structs.replace(c, parts=[msgspec.structs.replace(p) for p in c.parts])
                    for c in request.contents
                ],
            )
            fill_missing_signatures(request)
        if self.settings.mode == "gemini-api":
            # Vertex-only fields, valid requests elsewhere: ignored, as Google documents them.
            config = request.tool_config.function_calling_config if request.tool_config is not None else None
            if request.labels is not None or (config is not None and config.stream_function_call_arguments):
                log.debug("dropping labels / streamFunctionCallArguments: Vertex AI only")
                tool_config = request.tool_config
                if tool_config is not None and config is not None and config.stream_function_call_arguments:
                    calling = msgspec.structs.replace(config, stream_function_call_arguments=None)
                    tool_config = g.ToolConfig(
                        function_calling_config=calling if calling != g.FunctionCallingConfig() else None,
                        retrieval_config=tool_config.retrieval_config,
                    )
                    if tool_config == g.ToolConfig():
                        tool_config = None
                request = msgspec.structs.replace(request, labels=None, tool_config=tool_config)
        return request

    async def generate(
        self,
        model: str,
        request: g.GenerateContentRequest,
        *,
        stream: bool,
        parallel_tool_calls: bool = True,
        tuning: Tuning = NO_TUNING,
    ) -> AsyncIterator[g.GenerateContentResponse]:
        # parallel_tool_calls: Gemini has no such switch; accepted and ignored, as Vertex does.
        if not _MODEL_ID.fullmatch(model):
            raise InvalidRequest(f"not a Gemini model id: {model!r}", param="model")
        if self._auth is None:
            raise UpstreamError(SETUP_HINT, code="gemini_not_configured")
        allow.check(self.settings, request)
        body = _encoder.encode(self.prepare(request))
        url = self.url(model, stream=stream)
        admitted = await self.admission.acquire()
        try:
            attempt = 0
            while True:
                yielded = False
                try:
                    async for chunk in self._attempt(url, body, stream=stream):
                        yielded = True
                        yield chunk
                    return
                except ChatgateError as exc:
                    delay = self._backoff(exc, attempt)
                    if yielded or delay is None:
                        raise
                    log.info("Gemini answered %s; retry %d in %.1fs", exc.status, attempt + 1, delay)
                attempt += 1
                await asyncio.sleep(delay)
        finally:
            self.admission.release(admitted)

    def _backoff(self, error: ChatgateError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when not to retry."""
        if error.status not in _RETRIED or attempt >= self.settings.max_retries:
            return None
        after = _retry_after(error)
        if after is not None:
            return after if after <= MAX_RETRY_WAIT else None
        return self.settings.retry_backoff * (2**attempt) * (0.5 + random.random() / 2)

    async def _attempt(self, url: str, body: bytes, *, stream: bool) -> AsyncIterator[g.GenerateContentResponse]:
        headers = {"Content-Type": "application/json", **(await self._auth.headers())}  # type: ignore[union-attr]
        answering = False
        try:
            response = await self._client.send("POST", url, headers, body)
            try:
                if response.status != 200:
                    raise errors.body_error(response.status, await response.read(), response.headers.get("Retry-After"))
                answering = True
                if not stream:
                    chunk = _decode(await response.read())
                    if not _substantive(chunk):
                        raise UpstreamError("Gemini returned a response without content", code="empty_response")
                    yield chunk
                    return
                said = False
                async for payload in sse.payloads(response.chunks()):
                    chunk = _decode(payload)
                    # Chunks before the first that says something are dropped (their usage
                    # is repeated later), so an empty stream fails before any byte is sent.
                    said = said or _substantive(chunk)
                    if said:
                        yield chunk
                if not said:
                    raise UpstreamError("Gemini returned a stream without content", code="empty_response")
            finally:
                response.close()  # at once, also when the consumer stops early
        except CLIENT_ERRORS as exc:
            raise transport_error(exc, "Gemini", self.settings.timeout, answering=answering) from exc


def _decode(payload: bytes) -> g.GenerateContentResponse:
    """One JSON body or SSE payload → a response; an error object inside is raised."""
    head = payload.lstrip()[:1]
    if head == b"[" or b'"error"' in payload[:128]:
        try:
            error = errors.rpc_status(json.loads(payload))
        except ValueError:
            error = None
        if error is not None:
            raise errors.status_error(error, 200)
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise UpstreamError(f"Gemini returned a malformed response: {exc}", code="malformed_response") from exc
