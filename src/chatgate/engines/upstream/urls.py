"""The URL rule: where an upstream's chat, listing and health URLs are, and its name in logs.

Each upstream URL names an OpenAI API base, given with or without its version:

- path ending in a version segment (``/v1``, ``/v1beta1``): used as the API base;
- path containing ``/endpoints/<id>`` (a Vertex-style endpoint, such as another chatgate):
  used as the API base;
- anything else: ``/v1`` is appended (``http://host:8000`` means ``http://host:8000/v1``).

Chat requests go to ``<base>/chat/completions``, the model listing to ``<base>/models``.
``health_path`` is resolved against the server root: the URL without its version segment
(``http://host:8000/v1`` → ``http://host:8000``), or the origin for Vertex-style URLs.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_VERSION_SEGMENT = re.compile(r"/v\d+(?:(?:alpha|beta)\d*)?$")


def api_urls(url: str) -> tuple[str, str, str]:
    """``(api_base, server_root, query)`` for an upstream URL, following the URL rule.

    A query (``?api-version=...``) is kept apart, to go after each API path.
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if _VERSION_SEGMENT.search(path):
        base, root = path, _VERSION_SEGMENT.sub("", path)
    elif "/endpoints/" in path:
        base, root = path, ""
    else:
        base, root = path + "/v1", path
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return origin + base, origin + root, parts.query


def redact(url: str) -> str:
    """The URL without user info and query: fit for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
