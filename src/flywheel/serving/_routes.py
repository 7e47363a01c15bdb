"""The service's endpoints: thin handlers registered on the app, each handing its request to a
function here that does the work with what the endpoints share (:class:`_Service`).

The handlers keep their names and signatures, since FastAPI builds the OpenAPI document (its
operation ids, its parameters) from them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse

from flywheel.evaluation import plain_value
from flywheel.prediction_log import (
    LogFull,
    LogWriteError,
    PredictionLog,
    PredictionRecord,
    in_conflict,
    new_ids,
)
from flywheel.project import Project
from flywheel.serving._acks import _acked, _durable, _log_refused
from flywheel.serving._auth import _guard
from flywheel.serving._batcher import _Batcher
from flywheel.serving._docs import _answers
from flywheel.serving._frames import _frame
from flywheel.serving._metrics import _Metrics, _prometheus
from flywheel.serving._model_process import ModelFailed, ModelProcessGone
from flywheel.serving._options import ServeOptions
from flywheel.serving._requests import (
    _FEEDBACK_BODY,
    _OUTCOME_BODY,
    _REVIEW_BODY,
    _body_openapi,
    _check_feedback,
    _check_outcome,
    _error,
    _label_for,
    _predict_openapi,
    _read_json,
    _Refused,
    _request_rows,
)
from flywheel.serving._served import Served
from flywheel.serving._shadow import _Shadows, cast, second_health
from flywheel.serving._state import _State

__all__: list[str] = []


@dataclass(frozen=True)
class _Service:
    """What the endpoints share; ``holder["log"]`` is the prediction log while the app runs."""

    project: Project
    opts: ServeOptions
    metrics: _Metrics
    state: _State
    batcher: _Batcher
    holder: dict[str, PredictionLog]
    shadows: _Shadows


def _add_routes(app: FastAPI, service: _Service) -> None:
    """Register the endpoints; ``/predict``'s documented body is the served model's schema."""
    metrics = service.metrics
    token = service.opts.token
    guarded = [Depends(_guard(token))] if token else []  # /feedback, /outcome, /review: they write labels
    locked = (401,) if token else ()

    @app.post(
        "/predict",
        openapi_extra=_predict_openapi(service.state.current.schema),
        summary="Predict one row or a batch; every prediction is logged",
        responses=_answers("predict", 413, 422, 500, 503),
    )
    @metrics.observed("/predict")
    async def predict(request: Request) -> Any:
        return await _predict(service, request)

    @app.post(
        "/feedback",
        summary="The true label of a logged prediction, and who gave it",
        openapi_extra=_body_openapi(_FEEDBACK_BODY),
        responses=_answers("feedback", *locked, 404, 413, 422, 503),
        dependencies=guarded,
    )
    @metrics.observed("/feedback")
    async def feedback(request: Request) -> Any:
        return await _feedback(service, request)

    @app.post(
        "/outcome",
        summary="A downstream event (a click, a refund) and its value, tied to a logged prediction",
        openapi_extra=_body_openapi(_OUTCOME_BODY),
        responses=_answers("outcome", *locked, 404, 413, 422, 503),
        dependencies=guarded,
    )
    @metrics.observed("/outcome")
    async def outcome(request: Request) -> Any:
        return await _outcome(service, request)

    @app.get(
        "/review/next",
        summary="The open review item with the highest priority",
        responses=_answers("item", *locked, 404),
        dependencies=guarded,
    )
    async def review_next() -> Any:
        return await _review_next(service)

    @app.post(
        "/review/{item_id}",
        summary="Label a review item; the label becomes feedback",
        openapi_extra=_body_openapi(_REVIEW_BODY),
        responses=_answers("item", *locked, 404, 413, 422),
        dependencies=guarded,
    )
    async def review_label(item_id: str, request: Request) -> Any:
        return await _review_label(service, item_id, request)

    _add_status_routes(app, service)


def _add_status_routes(app: FastAPI, service: _Service) -> None:
    """``/health`` and ``/metrics``: what the service is doing, for people and for Prometheus."""

    @app.get(
        "/health",
        summary="Whether the service is up, and which model it serves",
        responses=_answers("health"),
    )
    async def health() -> Any:
        current = service.state.current
        log = service.holder.get("log")
        return {
            "status": "ok",
            "project": service.project.project,
            "alias": service.opts.alias,
            "model": current.name,
            "version": current.version,
            "ack": service.opts.ack,
            "log_queue_depth": log.depth if log else 0,
            "worker": os.getpid(),
            "workers": service.opts.workers,
            **second_health(service.opts, service.state.second[0] if service.state.second else None),
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text format")
    async def prometheus() -> Any:
        from flywheel.monitoring import gauges

        # The last `flywheel monitor` result, as gauges: the service itself judges nothing.
        return _prometheus(service.holder.get("log"), service.state.current, service.metrics) + gauges(
            service.project
        )


async def _predict(service: _Service, request: Request) -> Any:
    """``POST /predict``: check the rows, predict, log every prediction, answer once it is logged.

    With a second model (``--shadow``, ``--pilot``), one of the two answers (:func:`cast`) and the
    other is asked once the answer is durable; its answers are logged under the same ids.
    """
    started = time.perf_counter()
    first = service.state.serving  # one model for the whole request, even if a reload lands
    try:
        payload = await _read_json(request)
    except ValueError as exc:
        return _error(422, str(exc))
    try:
        batch, clean = _request_rows(payload, first[0].schema, service.opts.max_batch)
    except _Refused as exc:
        return _error(exc.status, str(exc))
    ids = new_ids(len(clean))  # time first: rows append at the index's right edge
    (current, runner), shadow = cast(first, service.state.second, _pilot_share(service.opts), ids[0])
    log = service.holder["log"]
    committed, ack = _acked(asyncio.get_running_loop())
    records: list[PredictionRecord] = []
    logged = _logger(current, clean, ids, started, records, lambda: log.submit(records, ack))
    try:
        if runner is None:
            out = await service.batcher.predict(current, _frame(clean, current.schema.features), logged)
        else:
            out = await runner.predict(clean, logged)
        await committed
    except (LogFull, LogWriteError) as exc:
        return _log_refused(exc)
    except ModelProcessGone as exc:
        service.state.revive(runner)  # type: ignore[arg-type]
        return _error(503, f"{exc}; retry shortly", {"Retry-After": "1"})
    except ModelFailed as exc:
        if exc.by_input:
            return _error(422, f"body: the model cannot predict for these values ({exc.reason})")
        return _error(500, str(exc))
    service.metrics.predictions += len(records)
    if shadow is not None:
        service.shadows.ask(shadow, clean, ids)
        service.metrics.piloted += 1 if current is not first[0] else 0
    body = {"model": current.name, "version": current.version, "predictions": out}
    if not batch:
        body = {"model": current.name, "version": current.version, **out[0]}
    return JSONResponse(body)  # plain JSON already: FastAPI's encoder would walk it again


def _pilot_share(opts: ServeOptions) -> float:
    """The share of requests the second model answers (0: it is a shadow, or there is none)."""
    return opts.pilot[1] if opts.pilot is not None else 0.0


def _logger(
    current: Served,
    clean: list[dict[str, Any]],
    ids: list[str],
    started: float,
    records: list[PredictionRecord],
    submit: Callable[[], None],
) -> Callable[[np.ndarray, np.ndarray | None], list[dict[str, Any]]]:
    """What runs the moment the model answers ``clean``: fill ``records``, submit them, and give the
    predictions to answer with."""

    def logged(labels: np.ndarray, proba: np.ndarray | None) -> list[dict[str, Any]]:
        """Run the moment the model answers: the commit starts before this request resumes."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        now = time.time()
        out = []
        classes = current.schema.classes or []
        for i, (row, pid) in enumerate(zip(clean, ids, strict=True)):
            probs = None
            if proba is not None:
                probs = {str(c): float(p) for c, p in zip(classes, proba[i], strict=True)}
            label = plain_value(labels[i])
            records.append(
                PredictionRecord(pid, now, current.name, current.version, row, label, probs, elapsed_ms)
            )
            out.append({"prediction_id": pid, "prediction": label, "probabilities": probs})
        submit()
        return out

    return logged


async def _feedback(service: _Service, request: Request) -> Any:
    """``POST /feedback``: join a true label to a logged prediction; answer once it is logged.

    A prediction labelled before keeps every label (the log is its history); the latest wins, and
    the answer says which label it replaces and whether the labels now disagree (a conflict,
    which the review queue then shows).
    """
    try:
        payload = await _read_json(request)
    except ValueError as exc:
        return _error(422, str(exc))
    problem = _check_feedback(payload)
    if problem:
        return _error(422, problem)
    log = service.holder["log"]
    pid = payload["prediction_id"]
    found, before = await run_in_threadpool(lambda: (log.prediction(pid), log.labels(pid)))
    if found is None:
        return _error(404, f"prediction_id: no logged prediction {pid!r}")
    try:
        label = _label_for(payload["label"], service.state.current.schema, service.opts.allow_new_classes)
    except _Refused as exc:
        return _error(exc.status, str(exc))
    source = str(payload.get("by") or payload.get("source") or "anonymous")
    refused = await _durable(log, lambda done: log.add_feedback(pid, str(label), source, ack=done))
    if refused is not None:
        return refused
    after = [*before, {"label": str(label), "origin": "traffic"}]
    replaces = before[-1]["label"] if before else None
    conflict = in_conflict(after)
    return {"ok": True, "prediction_id": pid, "label": label, "replaces": replaces, "conflict": conflict}


async def _outcome(service: _Service, request: Request) -> Any:
    """``POST /outcome``: tie a downstream event and its value to a logged prediction; answer once
    it is logged. Every outcome stays (a prediction may have many, of one name or several)."""
    try:
        payload = await _read_json(request)
    except ValueError as exc:
        return _error(422, str(exc))
    checked = _check_outcome(payload)
    if isinstance(checked, str):
        return _error(422, checked)
    pid, name, value = checked
    log = service.holder["log"]
    if await run_in_threadpool(log.prediction, pid) is None:
        return _error(404, f"prediction_id: no logged prediction {pid!r}")
    refused = await _durable(log, lambda done: log.add_outcome(pid, name, value, ack=done))
    if refused is not None:
        return refused
    service.metrics.outcomes += 1
    return {"ok": True, "prediction_id": pid, "name": name, "value": value}


async def _review_next(service: _Service) -> Any:
    """``GET /review/next``: the open review item with the highest priority."""
    from flywheel.loop import next_item

    item = await run_in_threadpool(next_item, service.project)
    if item is None:
        return _error(404, "the review queue is empty; `flywheel mine` fills it")
    return item.to_dict()


async def _review_label(service: _Service, item_id: str, request: Request) -> Any:
    """``POST /review/{item_id}``: label a review item; the label becomes feedback."""
    from flywheel.errors import DataError
    from flywheel.loop import label_item

    try:
        payload = await _read_json(request)
    except ValueError as exc:
        return _error(422, str(exc))
    if not isinstance(payload, dict) or "label" not in payload:
        return _error(422, "label: is required")
    extra = [k for k in payload if k not in ("label", "by")]
    if extra:
        return _error(422, f"{extra[0]}: is not a field of a review label (label, by)")
    by = payload.get("by")
    if by is not None and not isinstance(by, str):
        return _error(422, f"by: must be a string; got {by!r}")
    try:
        label = _label_for(payload["label"], service.state.current.schema, service.opts.allow_new_classes)
    except _Refused as exc:
        return _error(exc.status, str(exc))
    try:
        item = await run_in_threadpool(label_item, service.project, item_id, label, by or "anonymous", None)
    except DataError as exc:
        status = 404 if str(exc).startswith("no review item") else 422
        return _error(status, str(exc))
    return item.to_dict()
