"""Which projects may use which backend, beyond what the credentials allow.

A key or token scoped to ``team-a`` may call ``/v1/projects/team-a/...``; ``[endpoints.<id>]
projects`` and ``[gemini] projects`` say, in turn, which projects may use that endpoint or
Gemini at all (``["*"]``, the default: every project). Anything else is a 403.
"""

from __future__ import annotations

from chatgate.errors import PermissionDenied

ANY = "*"


def allows(allowed: list[str], project: str) -> bool:
    return ANY in allowed or project in allowed


def check(allowed: list[str], project: str, what: str) -> None:
    if not allows(allowed, project):
        raise PermissionDenied(f"project {project!r} may not use {what} on this server", code="project_not_allowed")
