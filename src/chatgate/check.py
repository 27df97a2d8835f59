"""``chatgate check``: whether everything configured works, before serving.

Each check runs the engines' own code: a local model is loaded and generates through
``LocalEngine`` (with its extra-buffer-types verdict, cached as ``serve`` caches it), Gemini's
credentials resolve through the Gemini engine's auth, each upstream replica is probed with the
relay's own health check. The result is a table; any failure makes the exit status non-zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

from chatgate import config
from chatgate.config import EndpointSettings, Settings
from chatgate.engines.gemini import auth as gemini_auth
from chatgate.engines.gemini import is_configured as gemini_configured
from chatgate.engines.local.engine import LocalEngine
from chatgate.engines.local.models import LocalModelSpec, ModelUnavailable, configured, spec
from chatgate.engines.local.probe import Probe
from chatgate.engines.upstream import UpstreamEndpoint
from chatgate.protocols import gemini as g

OK, FAILED, SKIPPED = "ok", "FAILED", "-"
PROMPT = "Count from one to twenty, in words."
TOKENS = 32  # generated to measure tokens/s
CREDENTIALS_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Row:
    what: str
    result: str  # OK, FAILED or SKIPPED
    detail: str


async def run(settings: Settings) -> list[Row]:
    """Every check, in the order of the table."""
    rows: list[Row] = []
    probe = Probe(config.state_dir(settings))
    found: list[LocalModelSpec] = []
    for name, model in configured(settings).items():
        try:
            found.append(spec(name, model, settings.local))
        except ModelUnavailable as exc:
            rows.append(Row(f"local model {name}", FAILED, str(exc)))
            continue
        rows.append(await local_model(found[-1], probe))
    rows.append(await gemini(settings))
    names = LocalEngine(found, probe=probe)  # not started: it only resolves names
    for endpoint_id, endpoint in settings.endpoints.items():
        if endpoint.upstreams:
            rows.extend(await upstreams(endpoint_id, endpoint))
        else:
            bound = names.resolve(endpoint.model or "")
            rows.append(
                Row(
                    f"endpoint {endpoint_id}",
                    OK if bound else FAILED,
                    f"served by local model {bound}" if bound else f"no local model named {endpoint.model!r} loads",
                )
            )
    return rows


async def local_model(model: LocalModelSpec, probe: Probe) -> Row:
    """Load the model (one context) and generate a few tokens, as a request would."""
    what = f"local model {model.name}"
    engine = LocalEngine([dataclasses.replace(model, parallel=1)], probe=probe)
    started = time.perf_counter()
    try:
        await engine.start()
    except Exception as exc:  # whatever stops it loading is what the user needs to read
        await engine.aclose()
        return Row(what, FAILED, f"{model.path}: does not load: {exc}")
    loaded = time.perf_counter() - started
    verdict = engine.model(model.name).verdict
    request = g.GenerateContentRequest(
        contents=[g.Content(role="user", parts=[g.Part(text=PROMPT)])],
        generation_config=g.GenerationConfig(temperature=0.0, max_output_tokens=TOKENS),
    )
    try:
        first: float | None = None
        tokens = 0
        async for chunk in engine.generate(model.name, request, stream=True):
            first = first or time.perf_counter()
            if chunk.usage_metadata is not None:
                tokens = chunk.usage_metadata.candidates_token_count or 0
        rate = (tokens - 1) / (time.perf_counter() - first) if first is not None and tokens > 1 else 0.0
    except Exception as exc:
        return Row(what, FAILED, f"loads, but generating failed: {exc}")
    finally:
        await engine.aclose()
    return Row(what, OK, f"loaded in {loaded:.1f} s; {tokens} tokens at {rate:.1f} tokens/s; {verdict}")


async def gemini(settings: Settings) -> Row:
    """Whether Gemini's credentials give a token (never shown)."""
    gs = settings.gemini
    if not gemini_configured(gs):
        return Row("gemini", SKIPPED, "not configured")
    where = "Gemini API" if gs.mode == "gemini-api" else f"Vertex AI ({gs.location})"
    credentials = gemini_auth.from_settings(gs)
    if credentials is None:
        return Row("gemini", FAILED, f"{where}: no credentials")
    if isinstance(credentials, gemini_auth.ApiKey):
        return Row("gemini", OK, f"{where}: an API key is set (Google checks it on the first request)")
    if isinstance(credentials, gemini_auth.StaticToken):
        return Row("gemini", OK, f"{where}: a fixed access token is set (Google checks it on the first request)")
    source = f"credentials file {gs.credentials_file}" if gs.credentials_file else "Application Default Credentials"
    try:
        headers = await asyncio.wait_for(credentials.headers(), CREDENTIALS_TIMEOUT)
    except TimeoutError:
        return Row("gemini", FAILED, f"{where}: {source} gave no token within {CREDENTIALS_TIMEOUT:.0f} s")
    except Exception as exc:
        return Row("gemini", FAILED, f"{where}: {source}: {exc}")
    if not headers.get("Authorization", "").removeprefix("Bearer ").strip():
        return Row("gemini", FAILED, f"{where}: {source} gave an empty token")
    return Row("gemini", OK, f"{where}: {source} resolve to an access token")


async def upstreams(endpoint_id: str, settings: EndpointSettings) -> list[Row]:
    """Each replica of a relayed endpoint, probed on its health route."""
    endpoint = UpstreamEndpoint(endpoint_id, settings)
    rows = []
    try:
        for number, replica in enumerate(endpoint.replicas, 1):
            what = f"endpoint {endpoint_id} upstream #{number}"
            if await endpoint.probe(replica):
                rows.append(Row(what, OK, f"{replica.label} answers on {settings.health_path}"))
            else:
                rows.append(Row(what, FAILED, f"{replica.label}: {replica.last_error}"))
    finally:
        await endpoint.aclose()
    return rows


def table(rows: Sequence[Row]) -> str:
    header = Row("check", "result", "detail")
    width = max(len(r.what) for r in (header, *rows))
    return "\n".join(f"{r.what:<{width}}  {r.result:<6}  {r.detail}" for r in (header, *rows))


def failed(rows: Sequence[Row]) -> bool:
    return any(r.result == FAILED for r in rows)
