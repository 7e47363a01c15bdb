"""The workbench app: FastAPI routes that render Jinja2 pages from the store, its static files,
the 404 page, and — unless read-only — the one write route, a review label.

Pages are server-rendered and work without JavaScript; scripts add the charts (Plotly, served
from the installed package) and the queue's keyboard shortcuts. Every asset is served here, so
the workbench works on a machine with no network.

Writing always needs a token, since any page open in the browser can post a form to a local
address: the one in ``--token-file``, typed in the page, or else a session token made at start,
held in memory and embedded in the queue page's form (another site's page cannot read it). On a
loopback address, a request naming another host is refused, so a name rebound to 127.0.0.1 by
another site's DNS cannot read the pages (nor the embedded token) as its own.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from flywheel.errors import DataError, FlywheelError
from flywheel.project import Project
from flywheel.workbench._pages import add_pages, queue_page
from flywheel.workbench._render import error_page, project_named, wants_json
from flywheel.workbench._views import NotFound

__all__ = [
    "create_app",
]

_HERE = Path(__file__).parent
_STATIC = {"style.css": "text/css", "queue.js": "text/javascript"}
_LOOPBACK = "127.0.0.1, ::1 or localhost"


def _loopback(name: str) -> bool:
    """Whether ``name`` (a host name or address, an IPv6 one with or without brackets) is this
    machine's loopback.

    >>> [_loopback(h) for h in ("127.0.0.1", "[::1]", "LocalHost", "0.0.0.0", "evil.example")]
    [True, True, True, False, False]
    """
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host a ``Host`` header names, without its port.

    >>> [_host_name(h) for h in ("127.0.0.1:8765", "[::1]:8765", "localhost", "::1")]
    ['127.0.0.1', '::1', 'localhost', '::1']
    """
    if header.startswith("["):
        name, _, rest = header[1:].partition("]")
        return name if rest == "" or (rest[:1] == ":" and rest[1:].isdigit()) else header
    name, colon, port = header.partition(":")
    return name if colon and ":" not in port and port.isdigit() else header


class _LoopbackHosts:
    """ASGI middleware: a request whose ``Host`` is not a loopback name gets a bare one-line 400.

    Another site can point its own name at 127.0.0.1 (DNS rebinding) and then read this
    workbench as its own origin; its requests still carry its name in ``Host``, so they end here.
    The answer names no project: whoever asked reads it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            named = [v for k, v in scope["headers"] if k == b"host"]
            host = named[0].decode("latin-1") if len(named) == 1 else ""
            if not _loopback(_host_name(host)):
                line = (
                    f"Host {host!r}: this workbench listens on a loopback address and answers only "
                    f"to {_LOOPBACK} (with any port)"
                )
                if "application/json" in headers.get(b"accept", b"").decode("latin-1"):
                    refused: Response = JSONResponse({"detail": line}, status_code=400)
                else:
                    refused = PlainTextResponse(line + "\n", status_code=400)
                refused.headers["X-Content-Type-Options"] = "nosniff"
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _write_token(host: str, token: str | None, read_only: bool) -> tuple[str | None, bool]:
    """The token labelling needs (``None``: no write route) and whether the page embeds it.

    Raises
    ------
    FlywheelError
        When labelling would be served on a non-loopback address without a token of the user's.
    """
    if read_only:
        return None, False
    if token is not None:
        return token, False
    if not _loopback(host):
        raise FlywheelError(
            f"--host {host}: labelling on a non-loopback address needs --token-file (or use --read-only); "
            f"without either, the host must be {_LOOPBACK}"
        )
    return secrets.token_urlsafe(32), True


def _load_projects(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Project]:
    """Each path's project by name.

    Raises
    ------
    FlywheelError
        When a path holds no project (the loader's one line), or two projects share a name.
    """
    from flywheel.errors import ProjectError
    from flywheel.project import load_project

    projects: dict[str, Project] = {}
    for path in paths:
        project = load_project(path)
        if project.project in projects:
            first = projects[project.project].path
            raise ProjectError(
                f"two projects are both called {project.project!r}: {first} and {project.path}"
            )
        projects[project.project] = project
    return projects


def create_app(
    paths: Sequence[str | os.PathLike[str]],
    *,
    token: str | None = None,
    read_only: bool = False,
    host: str = "127.0.0.1",
) -> FastAPI:
    """The workbench over the projects at ``paths``, to be served on ``host``.

    ``token``: labelling needs ``Authorization: Bearer <token>`` (or the page's token field, typed).
    Without one, labelling needs a session token made here, held in memory only and embedded in
    the queue page's form — allowed on a loopback ``host`` only.
    ``read_only``: no write route is registered at all; the queue page shows items only.
    On a loopback ``host``, a request whose ``Host`` header is not a loopback name gets a 400.

    Raises
    ------
    FlywheelError
        When a path holds no project, two projects share a name, or labelling would be served on a
        non-loopback ``host`` without ``token``.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    if not paths:
        raise FlywheelError("flywheel ui: give at least one project file or folder; got none")
    needed, embedded = _write_token(host, token, read_only)
    app = FastAPI(title="flywheel workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.projects = _load_projects(paths)
    app.state.paths = [p.path for p in app.state.projects.values()]
    app.state.token = needed
    app.state.token_embedded = embedded
    app.state.read_only = read_only
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["j2", "html"])
    )
    env.filters["quote"] = lambda s: quote(str(s), safe="")
    env.globals["embedded_token"] = needed if embedded else None  # the queue form's hidden field
    app.state.env = env
    if _loopback(host):
        app.add_middleware(_LoopbackHosts)
    _add_static(app)
    _add_errors(app)

    add_pages(app)
    if not read_only:
        _add_write(app)
    return app


def _add_static(app: FastAPI) -> None:
    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_script() -> Response:
        from flywheel.report import plotly_js

        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in _STATIC:
            raise NotFound(f"static file {name!r} is not one of {', '.join(_STATIC)}")
        return FileResponse(_HERE / "static" / name, media_type=_STATIC[name])


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return error_page(request, 404, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        read_only = request.app.state.read_only
        if read_only and request.method not in ("GET", "HEAD") and exc.status_code in (404, 405):
            message = (
                f"{request.method} {request.url.path!r}: this workbench is read-only; it has no write route"
            )
            return error_page(request, 405, message)
        if exc.status_code == 404:
            return error_page(request, 404, f"no page at {request.url.path!r}")
        return error_page(request, exc.status_code, str(exc.detail))


async def _form(request: Request) -> dict[str, str]:
    """The POSTed fields, from a form or a JSON object (the service's ``{"label", "by"}``)."""
    import json
    from urllib.parse import parse_qs

    body = (await request.body()).decode("utf-8", "replace")
    if "application/json" in request.headers.get("content-type", ""):
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise DataError(f"body: not JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise DataError(f"body: must be a JSON object with label (and by); got {type(payload).__name__}")
        return {k: "" if v is None else str(v) for k, v in payload.items()}
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _authorised(request: Request, form: dict[str, str]) -> str | None:
    """Why the request may not write (``None`` when it may): the bearer token, in the header or the form."""
    expected = request.app.state.token
    if expected is None:
        return None
    embedded = request.app.state.token_embedded
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else form.get("token", "")
    if not given:
        where = "label from this workbench's queue page" if embedded else "fill the token field"
        return f"a token is required to label here; {where} or send 'Authorization: Bearer <token>'"
    if not secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        if embedded:
            return "not this workbench's session token (a new one is made at each start; reload the page)"
        return "not this workbench's token (the one in the file given to --token-file)"
    return None


def _add_write(app: FastAPI) -> None:
    from flywheel.workbench._queue import check_label, give_label, run_classes

    @app.post("/project/{name}/queue/{item_id}", include_in_schema=False)
    async def label(name: str, item_id: str, request: Request) -> Response:
        project = project_named(request, name)
        skip = [s for s in request.query_params.get("skip", "").split(",") if s]
        try:
            form = await _form(request)
        except DataError as exc:
            return error_page(request, 422, str(exc))
        refused = _authorised(request, form)
        status = 401
        if refused is None:
            try:
                classes = await run_in_threadpool(run_classes, project)
                given = check_label(form.get("label", ""), classes)
                by = form.get("by", "").strip() or "anonymous"
                item = await run_in_threadpool(give_label, project, item_id, given, by, classes)
            except DataError as exc:
                refused, status = str(exc), 422
        if refused is not None:
            if wants_json(request):
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return JSONResponse({"detail": refused}, status_code=status, headers=headers)
            return await queue_page(request, project, skip, item_id, error=refused, status=status)
        if wants_json(request):
            return JSONResponse(item.to_dict())
        where = f"/project/{quote(name, safe='')}/queue?last={quote(item_id, safe='')}"
        return RedirectResponse(where + (f"&skip={quote(','.join(skip))}" if skip else ""), status_code=303)
