"""Rendering a workbench page, finding the project a URL names, and the queue's key map: what the
app's routes and its pages share.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from flywheel.project import Project
from flywheel.workbench._views import NotFound

__all__ = [
    "error_page",
    "label_keys",
    "project_named",
    "render",
    "wants_json",
]

_KEY_POOL = "1234567890abcdefghijklmnopqrtvwxyz"  # s and u are skip and undo


def label_keys(classes: list[str]) -> dict[str, str]:
    """Which key picks which class: a one-character class is its own key, the others take the
    next free digit or letter (never ``s`` or ``u``); classes past the pool have no key.

    >>> label_keys(["0", "1", "cat"])
    {'0': '0', '1': '1', 'cat': '2'}
    """
    keys: dict[str, str] = {}
    for c in classes:
        if len(c) == 1 and c.lower() in _KEY_POOL and c.lower() not in keys.values():
            keys[c] = c.lower()
    free = iter(k for k in _KEY_POOL if k not in keys.values())
    for c in classes:
        if c not in keys:
            key = next(free, None)
            if key is not None:
                keys[c] = key
    return {c: keys[c] for c in classes if c in keys}


def render(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``template`` with the nav bar's context."""
    app = request.app
    html = app.state.env.get_template(template).render(
        projects=list(app.state.projects), read_only=app.state.read_only, **context
    )
    return HTMLResponse(html, status_code=code)


def project_named(request: Request, name: str) -> Project:
    """The project called ``name``, or a 404 naming it and the projects served."""
    projects: dict[str, Project] = request.app.state.projects
    if name not in projects:
        raise NotFound(f"project {name!r} is not served here; served: {', '.join(projects)}")
    return projects[name]


def error_page(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(request, "error.html.j2", status, status=status, message=message)


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")
