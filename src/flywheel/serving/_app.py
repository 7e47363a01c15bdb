"""The prediction service: FastAPI on uvicorn, every prediction logged durably, reload on promotion.

``POST /predict`` takes one row (a JSON object of feature values) or a batch (``{"rows":
[...]}``), checks it against the training schema, predicts with the model an alias points at
(``champion`` by default), logs each prediction through :mod:`flywheel.prediction_log` and
answers only once the log holds it. ``POST /feedback`` joins a true label to a logged
prediction. ``GET /health`` and ``GET /metrics`` (Prometheus text) tell operators how it goes;
``/openapi.json`` documents it all.

The model is held in one reference that a watcher thread replaces when the alias moves to
another version: a request takes the reference once, so it is answered wholly by the old model
or wholly by the new one, and no request fails because of a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse

from flywheel.errors import FlywheelError, ModelError
from flywheel.evaluation import Schema, load_model, plain_value
from flywheel.prediction_log import (
    LOG_NAME,
    LogFull,
    LogWriteError,
    PredictionLog,
    PredictionRecord,
    short_slice,
)
from flywheel.project import Project
from flywheel.serving._frames import _frame
from flywheel.serving._model_process import ModelFailed, ModelProcess, ModelProcessGone, Together, settle
from flywheel.serving._served import Served, _predict, load_served, serving

__all__ = [
    "LATENCY_BUCKETS",
    "ServeOptions",
    "create_app",
    "serve",
]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class ServeOptions:
    """How the service runs (see ``flywheel serve --help``)."""

    alias: str = "champion"
    ack: Literal["durable", "fast"] = "durable"
    max_batch: int = 1_000
    queue_size: int = 10_000
    log_batch: int = 1_000
    retention_rows: int | None = None
    retention_days: float | None = None
    reload_s: float = 1.0
    allow_new_classes: bool = False
    log_path: Path | None = None
    model_process: bool = True  # model calls in a worker process (False: on the event loop)


@dataclass
class _Metrics:
    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    latency_count: int = 0
    predictions: int = 0
    reloads: int = 0
    reload_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observed(self, endpoint: str) -> Callable[[Any], Any]:
        """Count a handler's answers by status (read from the response it returns) and time them."""

        def wrap(handler: Any) -> Any:
            @functools.wraps(handler)
            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                response = await handler(*args, **kwargs)
                self.observe(endpoint, getattr(response, "status_code", 200), time.perf_counter() - started)
                return response

            return timed

        return wrap

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            key = (endpoint, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            if endpoint == "/predict":
                i = next((j for j, b in enumerate(LATENCY_BUCKETS) if seconds <= b), len(LATENCY_BUCKETS))
                self.buckets[i] += 1
                self.latency_sum += seconds
                self.latency_count += 1


class _Batcher:
    """Requests that arrive while the model is busy are predicted together, in one call.

    sklearn's per-call overhead (validation, a pipeline's steps) dwarfs the per-row cost, so
    under load one call for the rows of every waiting request multiplies capacity; with no load
    a request is predicted at once (no waiting window), so quiet-time latency is unchanged.
    """

    def __init__(
        self,
        max_rows: int = 4096,
        between: Callable[[], bool] | None = None,
        together: Together | None = None,
    ) -> None:
        self.max_rows = max_rows
        # Run between model calls: True when it made other work ready (durable acknowledgements),
        # which then goes first — a model call can take milliseconds.
        self.between = between
        self.together = together or contextlib.nullcontext  # around the callbacks of one call
        self._pending: list[tuple[Served, pd.DataFrame, asyncio.Future[Any], Callable[..., Any]]] = []
        self._busy = False

    async def predict(self, served: Served, frame: pd.DataFrame, then: Callable[..., Any]) -> Any:
        """``then(labels, probabilities)``, run as soon as the model has answered (its result)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((served, frame, fut, then))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                if self.between is not None and self.between():
                    await asyncio.sleep(0)
                    continue
                batch: list[tuple[Served, pd.DataFrame, asyncio.Future[Any], Callable[..., Any]]] = []
                rows = 0
                while self._pending and (not batch or rows + len(self._pending[0][1]) <= self.max_rows):
                    item = self._pending.pop(0)
                    batch.append(item)
                    rows += len(item[1])
                for served in {id(b[0]): b[0] for b in batch}.values():  # one call per model (a reload)
                    group = [b for b in batch if b[0] is served]
                    frame = (
                        pd.concat([g[1] for g in group], ignore_index=True) if len(group) > 1 else group[0][1]
                    )
                    try:
                        labels, proba = _predict(served, frame)  # on the loop: no thread hand-off
                    except Exception as exc:
                        failed = ModelFailed(f"the model failed on this request: {type(exc).__name__}: {exc}")
                        for g in group:
                            if not g[2].done():
                                g[2].set_exception(failed)
                        continue
                    start = 0
                    with self.together():
                        for g in group:
                            end = start + len(g[1])
                            if not g[2].done():
                                part = None if proba is None else proba[start:end]
                                settle(g[2], g[3], labels[start:end], part)
                            start = end
        finally:
            self._busy = False


class _State:
    """The served model (one reference, swapped whole) and the watcher that follows the alias."""

    def __init__(
        self,
        project: Project,
        served: Served,
        options: ServeOptions,
        metrics: _Metrics,
        together: Together | None = None,
    ) -> None:
        self.project = project
        self.together = together
        self.metrics = metrics
        # The model and the process that runs it, swapped together in one assignment.
        self.serving: tuple[Served, ModelProcess | None] = (served, None)
        self.options = options
        self.loop: asyncio.AbstractEventLoop | None = None
        self._reviving = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="flywheel-reload", daemon=True)

    @property
    def current(self) -> Served:
        return self.serving[0]

    async def start(self) -> None:
        """Start the model process (when one is wanted) and the watcher; on the running loop."""
        self.loop = asyncio.get_running_loop()
        if self.options.model_process:
            served = self.serving[0]
            self.serving = (served, await self._runner(served))
        self._thread.start()

    async def _runner(self, served: Served) -> ModelProcess | None:
        """A model process for ``served``; None (predict on the loop) when one cannot start."""
        try:
            loop = asyncio.get_running_loop()
            return await ModelProcess.start(served, loop, [str(self.project.root)], together=self.together)
        except ModelError as exc:
            print(f"flywheel serve: {exc}; predicting on the event loop", file=sys.stderr, flush=True)
            return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        runner = self.serving[1]
        if runner is not None:
            runner.close()

    def revive(self, runner: ModelProcess) -> None:
        """The model process died: start another for the same model (once, in the background)."""
        if runner.alive or self.serving[1] is not runner or self._reviving or self.loop is None:
            return
        self._reviving = True

        async def again() -> None:
            try:
                loop = asyncio.get_running_loop()
                fresh = await ModelProcess.start(
                    runner.served, loop, runner.search_path, together=runner.together
                )
                if self.serving[1] is runner:
                    self.serving = (runner.served, fresh)
                else:
                    fresh.close()
            except Exception as exc:
                print(f"flywheel serve: the model process cannot restart: {exc}", file=sys.stderr, flush=True)
            finally:
                self._reviving = False

        self.loop.create_task(again())

    def _watch(self) -> None:
        from flywheel.registry import open_store

        store = open_store(self.project.store_dir, create=False)
        seen = _store_signature(self.project.store_dir)
        try:
            while not self._stop.wait(self.options.reload_s):
                # A query every second takes the GIL from the request path for a few milliseconds
                # (SQLAlchemy's Python); for a file store, stat() says first whether anything changed.
                now = _store_signature(self.project.store_dir)
                if now is not None and now == seen:
                    continue
                seen = now
                try:
                    entry = store.get_alias(self.project.project, self.options.alias)
                    if entry is None or int(entry["id"]) == self.current.model_id:
                        continue
                    fresh = serving(load_model(self.project, entry, self.options.alias))
                    gc.freeze()  # the new model lives as long as the old one did (see _settle_heap)
                    runner = None
                    if self.options.model_process and self.loop is not None:  # ready before the swap
                        started = self._runner(fresh)
                        runner = asyncio.run_coroutine_threadsafe(started, self.loop).result(timeout=300)
                    old = self.serving[1]
                    self.serving = (fresh, runner)  # one assignment: requests see the old or the new
                    if old is not None and self.loop is not None:
                        self.loop.call_soon_threadsafe(old.retire)  # after its requests in flight
                    self.metrics.reloads += 1
                    print(
                        f"flywheel serve: {self.options.alias} is now {fresh.name} v{fresh.version}",
                        file=sys.stderr,
                        flush=True,
                    )
                except Exception as exc:  # keep serving the model we have
                    self.metrics.reload_errors += 1
                    print(f"flywheel serve: reload failed, still serving: {exc}", file=sys.stderr, flush=True)
        finally:
            store.close()


def _store_signature(location: str | Path) -> tuple[tuple[int, int], ...] | None:
    """Modification times and sizes of a SQLite store's files (None for a database URL)."""
    from flywheel.registry import store_file

    path = store_file(location)
    if path is None:
        return None
    signature = []
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            st = file.stat()
            signature.append((st.st_mtime_ns, st.st_size))
        except OSError:
            signature.append((0, -1))
    return tuple(signature)


def _validator(schema: Schema) -> Callable[[Any, str], dict[str, Any]]:
    """Checks one row against the schema; raises ValueError with the offending field and why."""
    expected = schema.features

    def check(row: Any, where: str) -> dict[str, Any]:
        if not isinstance(row, dict):
            raise ValueError(f"{where}: must be an object of feature values; got {type(row).__name__}")
        missing = [c for c in expected if c not in row]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ValueError(f"{where}.{missing[0]}: is required{more}")
        extra = [c for c in row if c not in expected]
        if extra:
            raise ValueError(f"{where}.{extra[0]}: is not a feature of this model")
        for col, kind in expected.items():
            v = row[col]
            if v is None:
                continue
            if kind == "numeric":
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise ValueError(f"{where}.{col}: must be a finite number; got {v!r}")
            elif not isinstance(v, str):
                raise ValueError(f"{where}.{col}: must be a string; got {v!r}")
        return row

    return check


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _log_refused(exc: LogFull | LogWriteError) -> Any:
    """503 with Retry-After: the log is behind (LogFull) or could not write (LogWriteError)."""
    if isinstance(exc, LogFull):
        return _error(503, f"{exc}; retry shortly", {"Retry-After": "1"})
    return _error(503, f"the prediction log could not be written ({exc}); retry", {"Retry-After": "1"})


def _acked(
    loop: asyncio.AbstractEventLoop,
) -> tuple[asyncio.Future[None], Callable[[BaseException | None], None]]:
    """A future and the acknowledgement that settles it (the log runs acks on the loop's thread)."""
    fut: asyncio.Future[None] = loop.create_future()

    def ack(error: BaseException | None) -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    return fut, ack


def create_app(project: Project, served: Served, options: ServeOptions | None = None) -> Any:
    """The FastAPI application (the log and the reload watcher start with it and stop with it)."""
    from contextlib import asynccontextmanager

    opts = options or ServeOptions()
    metrics = _Metrics()  # this app's counters: two apps in one process count apart
    log_path = opts.log_path or project.store_dir / LOG_NAME
    holder: dict[str, PredictionLog] = {}

    def together() -> contextlib.AbstractContextManager[Any]:
        """The requests one model call answered submit their records in one write."""
        return holder["log"].together() if "log" in holder else contextlib.nullcontext()

    state = _State(project, served, opts, metrics, together)
    batcher = _Batcher(between=lambda: "log" in holder and holder["log"].poll(), together=together)

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
        )
        await state.start()
        try:
            yield
        finally:
            state.stop()
            holder["log"].close()

    app = FastAPI(
        title=f"flywheel · {project.project}",
        description="Predictions from the promoted model, each logged durably; feedback joins true labels.",
        version="1",
        lifespan=lifespan,
    )
    app.state.flywheel = state

    feature_schema = {
        "type": "object",
        "properties": {
            c: ({"type": ["number", "null"]} if k == "numeric" else {"type": ["string", "null"]})
            for c, k in served.schema.features.items()
        },
        "required": list(served.schema.features),
        "additionalProperties": False,
    }
    predict_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            feature_schema,
                            {
                                "type": "object",
                                "properties": {"rows": {"type": "array", "items": feature_schema}},
                                "required": ["rows"],
                            },
                        ]
                    }
                }
            },
        }
    }

    async def _json(request: Request) -> Any:
        body = await request.body()
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"body: not valid JSON ({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
            ) from None

    async def _durable(log: PredictionLog, submit: Callable[[Any], None]) -> Any:
        """Hand records to the log; wait for their commit in durable mode. A response, or None when done."""
        fut, ack = _acked(asyncio.get_running_loop())
        try:
            submit(ack)
            await fut
        except (LogFull, LogWriteError) as exc:
            return _log_refused(exc)
        return None

    @app.post(
        "/predict",
        openapi_extra=predict_body,
        summary="Predict one row or a batch; every prediction is logged",
    )
    @metrics.observed("/predict")
    async def predict(request: Request) -> Any:
        started = time.perf_counter()
        current, runner = state.serving  # one model for the whole request, even if a reload lands
        try:
            payload = await _json(request)
        except ValueError as exc:
            return _error(422, str(exc))
        feature_names = current.schema.features
        batch = isinstance(payload, dict) and "rows" in payload and "rows" not in feature_names
        rows = payload["rows"] if batch else [payload]
        if batch and not isinstance(rows, list):
            return _error(422, f"rows: must be a list of rows; got {type(rows).__name__}")
        if len(rows) > opts.max_batch:
            return _error(
                413, f"rows: {len(rows)} rows is more than the limit of {opts.max_batch} per request"
            )
        if not rows:
            return _error(422, "rows: must hold at least one row")
        check = _validator(current.schema)
        try:
            clean = [check(r, f"rows[{i}]" if batch else "body") for i, r in enumerate(rows)]
        except ValueError as exc:
            return _error(422, str(exc))
        log = holder["log"]
        committed, ack = _acked(asyncio.get_running_loop())
        records: list[PredictionRecord] = []

        def logged(labels: np.ndarray, proba: np.ndarray | None) -> list[dict[str, Any]]:
            """Run the moment the model answers: the commit starts before this request resumes."""
            elapsed_ms = (time.perf_counter() - started) * 1000
            now = time.time()
            out = []
            classes = current.schema.classes or []
            for i, row in enumerate(clean):
                pid = uuid.uuid4().hex
                probs = None
                if proba is not None:
                    probs = {str(c): float(p) for c, p in zip(classes, proba[i], strict=True)}
                label = plain_value(labels[i])
                records.append(
                    PredictionRecord(pid, now, current.name, current.version, row, label, probs, elapsed_ms)
                )
                out.append({"prediction_id": pid, "prediction": label, "probabilities": probs})
            log.submit(records, ack)
            return out

        try:
            if runner is None:
                out = await batcher.predict(current, _frame(clean, feature_names), logged)
            else:
                out = await runner.predict(clean, logged)
            await committed
        except (LogFull, LogWriteError) as exc:
            return _log_refused(exc)
        except ModelProcessGone as exc:
            state.revive(runner)  # type: ignore[arg-type]
            return _error(503, f"{exc}; retry shortly", {"Retry-After": "1"})
        except ModelFailed as exc:
            return _error(500, str(exc))
        metrics.predictions += len(records)
        body = {"model": current.name, "version": current.version, "predictions": out}
        if not batch:
            body = {"model": current.name, "version": current.version, **out[0]}
        return JSONResponse(body)  # plain JSON already: FastAPI's encoder would walk it again

    @app.post("/feedback", summary="The true label of a logged prediction, and who gave it")
    @metrics.observed("/feedback")
    async def feedback(request: Request) -> Any:
        try:
            payload = await _json(request)
        except ValueError as exc:
            return _error(422, str(exc))
        problem = _check_feedback(payload)
        if problem:
            return _error(422, problem)
        log = holder["log"]
        pid = payload["prediction_id"]
        found = await run_in_threadpool(log.prediction, pid)
        if found is None:
            return _error(404, f"prediction_id: no logged prediction {pid!r}")
        schema = state.current.schema
        label = payload["label"]
        if schema.classes is not None:
            known = {str(c) for c in schema.classes}
            if str(label) not in known and not opts.allow_new_classes:
                shown = ", ".join(sorted(known)[:12])
                return _error(
                    422,
                    f"label: {label!r} is not a known class ({shown}); "
                    "start the service with --allow-new-classes to accept it",
                )
        elif isinstance(label, bool) or not isinstance(label, int | float):
            return _error(422, f"label: must be a number for a regression target; got {label!r}")
        source = str(payload.get("by") or payload.get("source") or "anonymous")
        refused = await _durable(log, lambda done: log.add_feedback(pid, str(label), source, ack=done))
        if refused is not None:
            return refused
        return {"ok": True, "prediction_id": pid, "label": label}

    @app.get("/review/next", summary="The open review item with the highest priority")
    async def review_next() -> Any:
        from flywheel.loop import next_item

        item = await run_in_threadpool(next_item, project)
        if item is None:
            return _error(404, "the review queue is empty; `flywheel mine` fills it")
        return item.to_dict()

    @app.post("/review/{item_id}", summary="Label a review item; the label becomes feedback")
    async def review_label(item_id: str, request: Request) -> Any:
        from flywheel.errors import DataError
        from flywheel.loop import label_item

        try:
            payload = await _json(request)
        except ValueError as exc:
            return _error(422, str(exc))
        if not isinstance(payload, dict) or "label" not in payload:
            return _error(422, "label: is required")
        extra = [k for k in payload if k not in ("label", "by")]
        if extra:
            return _error(422, f"{extra[0]}: is not a field of a review label (label, by)")
        classes = None if opts.allow_new_classes else state.current.schema.classes
        try:
            item = await run_in_threadpool(
                label_item, project, item_id, payload["label"], str(payload.get("by") or "anonymous"), classes
            )
        except DataError as exc:
            status = 404 if str(exc).startswith("no review item") else 422
            return _error(status, str(exc))
        return item.to_dict()

    @app.get("/health", summary="Whether the service is up, and which model it serves")
    async def health() -> Any:
        current = state.current
        log = holder.get("log")
        return {
            "status": "ok",
            "project": project.project,
            "alias": opts.alias,
            "model": current.name,
            "version": current.version,
            "ack": opts.ack,
            "log_queue_depth": log.depth if log else 0,
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text format")
    async def prometheus() -> Any:
        return _prometheus(holder.get("log"), state.current, metrics)

    return app


def _check_feedback(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return f"body: must be an object with prediction_id, label and by; got {type(payload).__name__}"
    for name in ("prediction_id", "label"):
        if name not in payload:
            return f"{name}: is required"
    extra = [k for k in payload if k not in ("prediction_id", "label", "by", "source")]
    if extra:
        return f"{extra[0]}: is not a field of feedback (prediction_id, label, by)"
    if not isinstance(payload["prediction_id"], str):
        return f"prediction_id: must be a string; got {payload['prediction_id']!r}"
    if payload["label"] is None or isinstance(payload["label"], dict | list):
        return f"label: must be a class label or a number; got {payload['label']!r}"
    by = payload.get("by", payload.get("source"))
    if by is not None and not isinstance(by, str):
        return f"by: must be a string; got {by!r}"
    return None


def _prometheus(log: PredictionLog | None, current: Served, metrics: _Metrics) -> str:
    lines = [
        "# HELP flywheel_requests_total Requests by endpoint and status.",
        "# TYPE flywheel_requests_total counter",
    ]
    with metrics.lock:
        for (endpoint, status), n in sorted(metrics.requests.items()):
            lines.append(f'flywheel_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
        lines += [
            "# HELP flywheel_predict_latency_seconds Time to answer /predict, durable logging included.",
            "# TYPE flywheel_predict_latency_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(LATENCY_BUCKETS, metrics.buckets, strict=False):
            cumulative += n
            lines.append(f'flywheel_predict_latency_seconds_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f'flywheel_predict_latency_seconds_bucket{{le="+Inf"}} {metrics.latency_count}')
        lines.append(f"flywheel_predict_latency_seconds_sum {metrics.latency_sum}")
        lines.append(f"flywheel_predict_latency_seconds_count {metrics.latency_count}")
    lines += [
        "# HELP flywheel_log_queue_depth Records waiting for the log writer.",
        "# TYPE flywheel_log_queue_depth gauge",
        f"flywheel_log_queue_depth {log.depth if log else 0}",
        "# HELP flywheel_predictions_logged_total Predictions written to the log.",
        "# TYPE flywheel_predictions_logged_total counter",
        f"flywheel_predictions_logged_total {log.logged if log else 0}",
        "# HELP flywheel_predictions_dropped_total Records lost by the log (must stay 0).",
        "# TYPE flywheel_predictions_dropped_total counter",
        f"flywheel_predictions_dropped_total {log.dropped if log else 0}",
        "# HELP flywheel_feedback_logged_total Feedback labels written to the log.",
        "# TYPE flywheel_feedback_logged_total counter",
        f"flywheel_feedback_logged_total {log.feedback if log else 0}",
        "# HELP flywheel_model_reloads_total Times the served model changed.",
        "# TYPE flywheel_model_reloads_total counter",
        f"flywheel_model_reloads_total {metrics.reloads}",
        "# HELP flywheel_model_version Version of the model being served.",
        "# TYPE flywheel_model_version gauge",
        f'flywheel_model_version{{model="{current.name}"}} {current.version}',
    ]
    return "\n".join(lines) + "\n"


def serve(
    project: Project, *, host: str = "127.0.0.1", port: int = 8000, options: ServeOptions | None = None
) -> None:
    """Load the model, bind, print where it listens, and serve until interrupted.

    Raises
    ------
    FlywheelError
        When no model can be served or the address cannot be bound (before anything listens).
    """
    import socket

    import uvicorn

    opts = options or ServeOptions()
    served = load_served(project, opts.alias)
    app = create_app(project, served, opts)
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
    sock.listen(2048)
    bound = sock.getsockname()[1]
    print(
        f"flywheel serve: {served.alias} = {served.name} v{served.version} on http://{host}:{bound} "
        f"(ack: {opts.ack})",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    _settle_heap()
    # The event loop's wake-ups are short and requests wait on them; the model process and the
    # log's writer, started from here, inherit this (see short_slice).
    short_slice()
    uvicorn.Server(config).run(sockets=[sock])


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
