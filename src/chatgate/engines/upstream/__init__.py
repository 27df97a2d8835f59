"""OpenAI-compatible upstreams: the model servers behind a self-deployed endpoint.

An endpoint (``[endpoints.<id>]`` with ``upstreams``) is one model served by one or more
replicas. chatgate relays OpenAI request bodies to them untranslated and their answers back,
as bytes. A module per job:

- ``urls``: where an upstream's chat, listing and health URLs are (the URL rule);
- ``endpoint``: admission, balancing and retry (``UpstreamEndpoint``);
- ``replicas``: replicas and the health rules that eject and readmit them;
- ``probe``: the periodic health checks;
- ``stream``: one relayed answer, SSE re-framed at event boundaries, usage sniffed from bytes;
- ``errors``: an upstream's error answer → the client's error;
- ``listing``: an upstream's model listing.
"""

from chatgate.engines.upstream.endpoint import UpstreamEndpoint
from chatgate.engines.upstream.stream import UpstreamResponse

__all__ = ["UpstreamEndpoint", "UpstreamResponse"]
