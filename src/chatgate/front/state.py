"""What the request handlers share: settings, auth, engines, targets."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatgate.config import Settings
from chatgate.engines.upstream import UpstreamEndpoint
from chatgate.front.auth import Authenticator
from chatgate.front.cachestore import CacheStore
from chatgate.front.deadline import Deadlines
from chatgate.front.metrics import Metrics
from chatgate.front.quota import Quotas
from chatgate.front.targets import Targets


@dataclass
class AppState:
    settings: Settings
    auth: Authenticator
    targets: Targets
    quotas: Quotas
    metrics: Metrics = field(default_factory=Metrics)
    # Self-deployed endpoints relayed to upstream servers, by endpoint id.
    upstreams: dict[str, UpstreamEndpoint] = field(default_factory=dict)
    ready: bool = False
    # When each request in flight must end (``server.request_timeout``, and shutdown's drain).
    deadlines: Deadlines = field(default_factory=Deadlines)
    # Context caches (cachedContents) on local models, and which project owns each Gemini one.
    caches: CacheStore = field(default_factory=lambda: CacheStore(lambda pinned: None, max_caches=0))

    def upstream(self, endpoint_id: str) -> UpstreamEndpoint | None:
        return self.upstreams.get(endpoint_id)
