"""The prediction service: FastAPI on uvicorn, every prediction logged durably, reload on promotion.

``POST /predict`` takes one row (a JSON object of feature values) or a batch (``{"rows":
[...]}``), checks it against the training schema, predicts with the model an alias points at
(``champion`` by default), logs each prediction through :mod:`flywheel.prediction_log` and
answers only once the log holds it. ``POST /feedback`` joins a true label to a logged
prediction, ``POST /outcome`` a downstream event (a click, a refund). ``GET /health`` and
``GET /metrics`` (Prometheus text) tell operators how it goes; ``/openapi.json`` documents it all,
and ``/docs`` shows it (no CDN needed).

With ``--shadow NAME`` or ``--pilot NAME:SHARE`` a second model runs on the same requests and its
answers are logged beside the ones returned (:mod:`._shadow`).

Bodies over ``max_body_bytes`` are refused before they are read (:mod:`._limits`); with a token
(``--token-file``) the routes that write labels and outcomes need it (:mod:`._auth`).

The model is held in one reference that a watcher thread replaces when the alias moves to
another version: a request takes the reference once, so it is answered wholly by the old model
or wholly by the new one, and no request fails because of a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import socket
from typing import Any

from fastapi import FastAPI

from flywheel.errors import FlywheelError
from flywheel.prediction_log import PredictionLog
from flywheel.project import Project
from flywheel.serving._auth import load_token
from flywheel.serving._batcher import _Batcher
from flywheel.serving._docs import _add_docs
from flywheel.serving._limits import _BodyLimit
from flywheel.serving._metrics import _Metrics
from flywheel.serving._options import ServeOptions
from flywheel.serving._routes import _add_routes, _Service
from flywheel.serving._served import Served
from flywheel.serving._shadow import _Shadows, load_second
from flywheel.serving._state import _State

__all__ = [
    "create_app",
    "listen",
]


def create_app(
    project: Project, served: Served, options: ServeOptions | None = None, second: Served | None = None
) -> Any:
    """The FastAPI application (the log and the reload watcher start with it and stop with it).

    ``second`` is the model of ``options.shadow`` or ``options.pilot``, loaded here when not given.
    """
    from contextlib import asynccontextmanager

    from flywheel.registry import log_location

    opts = options or ServeOptions()
    if second is None:
        second = load_second(project, opts, served)
    if opts.token is None and opts.token_file is not None:
        opts = dataclasses.replace(opts, token=load_token(opts.token_file)[0])
    metrics = _Metrics()  # this app's counters: two apps in one process count apart
    log_path = opts.log_path or log_location(project)
    holder: dict[str, PredictionLog] = {}

    def together() -> contextlib.AbstractContextManager[Any]:
        """The requests one model call answered submit their records in one write."""
        return holder["log"].together() if "log" in holder else contextlib.nullcontext()

    state = _State(project, served, opts, metrics, together, second)
    batcher = _Batcher(between=lambda: "log" in holder and holder["log"].poll(), together=together)
    shadows = _Shadows(metrics, batcher, holder, state.revive)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        holder["log"] = PredictionLog(
            log_path,
            mode=opts.ack,
            queue_size=opts.queue_size,
            batch=opts.log_batch,
            retention_rows=opts.retention_rows,
            retention_days=opts.retention_days,
            loop=asyncio.get_running_loop(),
            writer_socket=opts.writer_socket,
        )
        await state.start()
        try:
            yield
        finally:
            await shadows.drain()  # shadow runs in flight are logged before their model and the log stop
            state.stop()
            holder["log"].close()

    app = FastAPI(
        title=f"flywheel · {project.project}",
        description="Predictions from the promoted model, each logged durably; feedback joins true labels, "
        "outcomes join downstream events.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their assets from a CDN: _add_docs serves them from here
        redoc_url=None,
    )
    app.state.flywheel = state
    app.add_middleware(_BodyLimit, max_bytes=opts.max_body_bytes)
    _add_docs(app)
    _add_routes(app, _Service(project, opts, metrics, state, batcher, holder, shadows))
    return app


def _settle_heap() -> None:
    """Keep the cyclic garbage collector's full passes off the request path.

    A process holding pandas, scikit-learn, FastAPI and a model has ~200,000 tracked objects; a
    full collection walks them all (~100 ms here) and stalls every request in flight — the p99 of
    a busy service was that pause. Objects alive at start-up (or after a reload) live as long as
    the service, so they are moved out of the collector's reach; the requests' short-lived
    objects are collected as usual.
    """
    gc.collect()
    gc.freeze()


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A socket listening on ``host:port`` (port 0: a free one), for uvicorn to serve on.

    Raises
    ------
    FlywheelError
        When the address cannot be bound (in use, not this machine's), naming it.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, small responses wait ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FlywheelError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})"
        ) from None
    sock.listen(backlog)
    return sock
