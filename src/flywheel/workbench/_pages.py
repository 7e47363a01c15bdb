"""The workbench's pages: portfolio, project, runs, run comparison, monitoring and the review queue.

Each handler reads in a worker thread (the store and the log are files; a page never blocks the
event loop on them) and renders one template.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from flywheel.project import Project
from flywheel.workbench._render import label_keys, project_named, render
from flywheel.workbench._views import NotFound

__all__ = [
    "add_pages",
    "queue_page",
]


def _portfolio(paths: list[Any]) -> dict[str, Any]:
    from flywheel.report import figure_json, portfolio_figure
    from flywheel.scoping import portfolio

    rows = [e.to_dict() for e in portfolio(paths)]
    return {"rows": rows, "chart_figure": figure_json(portfolio_figure(rows))}


def add_pages(app: FastAPI) -> None:
    """Register every GET page."""
    from flywheel.workbench._views import compare_view, monitor_view, project_view, runs_view

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def portfolio_page(request: Request) -> HTMLResponse:
        view = await run_in_threadpool(_portfolio, request.app.state.paths)
        return render(request, "portfolio.html.j2", page="portfolio", **view)

    @app.get("/project/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def project_page(name: str, request: Request) -> HTMLResponse:
        project = project_named(request, name)
        view = await run_in_threadpool(project_view, project)
        return render(request, "project.html.j2", page="project", project=project, **view)

    @app.get("/project/{name}/runs", response_class=HTMLResponse, include_in_schema=False)
    async def runs_page(name: str, request: Request) -> HTMLResponse:
        project = project_named(request, name)
        runs = await run_in_threadpool(runs_view, project)
        return render(request, "runs.html.j2", page="runs", project=project, runs=runs)

    @app.get("/project/{name}/runs/compare", response_class=HTMLResponse, include_in_schema=False)
    async def compare_page(name: str, request: Request, a: str = "", b: str = "") -> HTMLResponse:
        project = project_named(request, name)
        if not a or not b:
            raise NotFound(f"compare needs two run ids, ?a=ID&b=ID; got a={a!r}, b={b!r}")
        view = await run_in_threadpool(compare_view, project, a, b)
        return render(request, "compare.html.j2", page="runs", project=project, **view)

    @app.get("/project/{name}/monitor", response_class=HTMLResponse, include_in_schema=False)
    async def monitor_page(name: str, request: Request) -> HTMLResponse:
        project = project_named(request, name)
        view = await run_in_threadpool(monitor_view, project)
        return render(request, "monitor.html.j2", page="monitor", project=project, **view)

    @app.get("/project/{name}/queue", response_class=HTMLResponse, include_in_schema=False)
    async def review_page(
        name: str, request: Request, skip: str = "", show: str = "", last: str = ""
    ) -> HTMLResponse:
        project = project_named(request, name)
        skipped = [s for s in skip.split(",") if s]
        return await queue_page(request, project, skipped, show or None, last=last or None)


async def queue_page(
    request: Request,
    project: Project,
    skip: list[str],
    show: str | None,
    *,
    last: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The queue page: one item, its reasons, input and top classes, the label buttons and keys."""
    from flywheel.workbench._queue import queue_view, run_classes

    view = await run_in_threadpool(queue_view, project, skip, show)
    classes = await run_in_threadpool(run_classes, project)
    return render(
        request,
        "queue.html.j2",
        status,
        page="queue",
        project=project,
        classes=classes,
        keys=label_keys(classes or []),
        last=last,
        error=error,
        skip_param=",".join(view["skipped"]),
        token_needed=request.app.state.token is not None,
        **view,
    )
