"""``GET /{v1,v1beta1}/projects/{project}/locations/{location}/endpoints``: the endpoints a
project may call, in Vertex's shape (``projects.locations.endpoints.list``).

Each configured ``[endpoints.<id>]`` the project may use (``projects``, see ``projects.py``)
is listed as ``{"name": "projects/{project}/locations/{location}/endpoints/{id}",
"displayName": id}``; one restricted to other projects is left out, as Vertex lists only the
caller's own. What an endpoint serves is its own ``.../endpoints/{id}/models``. Errors are in
Google's shape, as on Vertex's resource routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatgate.front import projects
from chatgate.front.render import google_errors

if TYPE_CHECKING:
    from chatgate.front.state import AppState


@google_errors
async def list_endpoints(request: Request) -> Response:
    state: AppState = request.app.state.chatgate
    project, location = request.path_params["project"], request.path_params["location"]
    state.auth.check(request.headers, project)
    parent = f"projects/{project}/locations/{location}"
    listed = [
        {"name": f"{parent}/endpoints/{endpoint_id}", "displayName": endpoint_id}
        for endpoint_id, endpoint in sorted(state.settings.endpoints.items())
        if projects.allows(endpoint.projects, project)
    ]
    # Vertex leaves an empty list out of its JSON (proto3 defaults are not written).
    return JSONResponse({"endpoints": listed} if listed else {})
