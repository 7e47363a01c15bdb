"""A second model on the same traffic: ``--shadow NAME`` (it runs, it is logged, it never answers)
and ``--pilot NAME:SHARE`` (it answers that share of the requests, and the served model runs as
their shadow).

Why: a challenger judged on a frozen test set has not met production. Run beside the champion on
the requests the service really gets, every input has both answers in the log (``predictions``
holds the one returned, ``shadow`` the other, under the same prediction id), so once labels or
outcomes arrive the two can be compared on the same rows — paired evidence, not two samples.

How it stays off the request path: the second model has a process of its own (or shares the event
loop, with ``--model-on-loop``), and it is asked only once the request's own answer is durable; its
records go to the log as their own frame. It never fails a request, and it never runs before the
request's answer is ready: a failure is counted (``flywheel_shadow_errors_total``) and printed
once. On shutdown the shadow runs still in flight finish and are logged before the log closes.
A shadow that cannot keep up (``max_pending`` runs in flight) is skipped for the requests that
find it so, and they are counted (``flywheel_shadow_skipped_total``); with ``--shadow`` its process
also runs at a lower priority than the one that answers, so on a machine short of cores it takes
what the answers leave.

Pilot assignment is a pure function of the request's first prediction id (:func:`piloted`):
the first 8 bytes of its SHA-256, read as a big-endian integer, below ``SHARE × 2**64``. Ids are
80 random bits after the time (:func:`flywheel.prediction_log.new_ids`), and the hash mixes
all of them, so the share holds in expectation, and anyone can recompute from the log which
model was due to answer each request.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel.errors import FlywheelError, ModelError
from flywheel.evaluation import load_model, plain_value
from flywheel.prediction_log import LogFull, PredictionLog, ShadowRecord
from flywheel.project import Project
from flywheel.serving._batcher import _Batcher
from flywheel.serving._frames import _frame
from flywheel.serving._metrics import _Metrics
from flywheel.serving._model_process import ModelProcess, ModelProcessGone
from flywheel.serving._options import ServeOptions
from flywheel.serving._served import Served, serving

__all__ = [
    "cast",
    "load_second",
    "parse_pilot",
    "piloted",
    "second_health",
    "second_name",
]

Runner = ModelProcess | None
Slot = tuple[Served, Runner]  # a model and the process that runs it (None: the event loop)


def parse_pilot(text: str) -> tuple[str, float]:
    """``NAME:SHARE`` as the model's name and the share of requests it answers.

    Raises
    ------
    FlywheelError
        When it is not ``NAME:SHARE`` with ``0 < SHARE <= 1``.

    Examples
    --------
    >>> parse_pilot("challenger:0.1")
    ('challenger', 0.1)
    """
    name, colon, share_text = text.rpartition(":")
    try:
        share = float(share_text)
    except ValueError:
        share = math.nan
    if not colon or not name.strip() or not math.isfinite(share):
        raise FlywheelError(f"--pilot must be NAME:SHARE (e.g. challenger:0.1); got {text!r}")
    if not 0 < share <= 1:
        raise FlywheelError(
            f"--pilot {text}: SHARE must be a fraction of the requests, 0 < SHARE <= 1; got {share_text}"
        )
    return name.strip(), share


def piloted(prediction_id: str, share: float) -> bool:
    """Whether a request whose first prediction id is ``prediction_id`` goes to the pilot model.

    The first 8 bytes of the id's SHA-256, as a big-endian integer, below ``share × 2**64``: a pure
    function of the id, so the log alone says which model was due to answer each request.

    Examples
    --------
    >>> piloted("0" * 32, 1.0), piloted("0" * 32, 1e-12)
    (True, False)
    """
    draw = int.from_bytes(hashlib.sha256(prediction_id.encode()).digest()[:8], "big")
    return draw < share * 2.0**64


def second_name(options: ServeOptions) -> tuple[str, str, float] | None:
    """The flag, the model's name and the pilot share (0 for a shadow) of the second model, if any.

    Raises
    ------
    FlywheelError
        When both ``--shadow`` and ``--pilot`` are given, or the share is outside (0, 1].
    """
    if options.shadow is not None and options.pilot is not None:
        raise FlywheelError(
            f"--shadow {options.shadow} and --pilot {options.pilot[0]}:{options.pilot[1]}: give one "
            "(a pilot's requests are shadowed by the served model already)"
        )
    if options.shadow is not None:
        return "--shadow", options.shadow, 0.0
    if options.pilot is not None:
        name, share = options.pilot
        if not 0 < share <= 1:
            raise FlywheelError(f"--pilot {name}:{share}: SHARE must be in (0, 1]; got {share}")
        return "--pilot", name, share
    return None


def load_second(project: Project, options: ServeOptions, served: Served) -> Served | None:
    """The model ``--shadow`` or ``--pilot`` names (None when neither is given), loaded and checked.

    ``NAME`` is an alias first (``challenger``), else a saved model's name (its newest version).

    Raises
    ------
    FlywheelError
        One line naming the known aliases and models when ``NAME`` is neither; when it is the served
        model itself; when it takes other features than the served model.
    """
    wanted = second_name(options)
    if wanted is None:
        return None
    flag, name, _ = wanted
    from flywheel.registry import project_store

    store = project_store(project, create=False)
    try:
        entry = store.get_alias(project.project, name) or store.latest_model(project.project, name)
        known = store.list_models(project.project) if entry is None else []
    finally:
        store.close()
    if entry is None:
        models = sorted({m["name"] for m in known})
        aliases = sorted({a for m in known for a in m["aliases"]})
        raise ModelError(
            f"{flag} {name}: no alias or saved model of that name in {project.project}; "
            f"aliases: {', '.join(aliases) or 'none'}; models: {', '.join(models) or 'none'}"
        )
    if int(entry["id"]) == served.model_id:
        raise ModelError(
            f"{flag} {name}: is the served model itself ({served.alias} = {served.name} v{served.version}); "
            "name another model or alias"
        )
    second = serving(load_model(project, entry, name))
    if second.schema.features != served.schema.features:
        raise ModelError(
            f"{flag} {name}: {second.name} v{second.version} takes other features than "
            f"{served.name} v{served.version}; both must answer the same rows"
        )
    return second


def cast(first: Slot, second: Slot | None, share: float, prediction_id: str) -> tuple[Slot, Slot | None]:
    """Which model answers a request and which runs as its shadow (None: no shadow)."""
    if second is None:
        return first, None
    if share > 0 and piloted(prediction_id, share):
        return second, first
    return first, second


def second_health(options: ServeOptions, second: Served | None) -> dict[str, Any]:
    """What ``/health`` says of the second model: ``shadow`` and ``pilot``, each None when off."""
    wanted = second_name(options)
    if wanted is None or second is None:
        return {"shadow": None, "pilot": None}
    flag, name, share = wanted
    about = {"name": name, "model": second.name, "version": second.version}
    if flag == "--pilot":
        return {"shadow": None, "pilot": {**about, "share": share}}
    return {"shadow": about, "pilot": None}


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def _probabilities(classes: list[Any], proba: np.ndarray | None, i: int) -> dict[str, float] | None:
    if proba is None:
        return None
    return {str(c): float(p) for c, p in zip(classes, proba[i], strict=True)}


@dataclass
class _Shadows:
    """The shadow runs in flight: asked once the answer is durable, logged, counted, flushed."""

    metrics: _Metrics
    batcher: _Batcher
    holder: dict[str, PredictionLog]
    revive: Callable[[ModelProcess], None]
    # Shadow runs in flight at most: past it (a shadow slower than the traffic) a request is not
    # shadowed, so the backlog cannot grow without bound; flywheel_shadow_skipped_total counts them.
    max_pending: int = 1_000
    told: bool = False  # the first failure is printed; the others are only counted

    def __post_init__(self) -> None:
        self.pending: set[asyncio.Future[Any]] = set()

    def ask(self, slot: Slot, rows: list[dict[str, Any]], ids: list[str]) -> None:
        """Run ``slot``'s model on ``rows`` (answered already, under ``ids``); log its answers."""
        served, runner = slot
        if len(self.pending) >= self.max_pending:
            self.metrics.shadow_skipped += 1
            return
        started = time.perf_counter()

        def logged(labels: np.ndarray, proba: np.ndarray | None) -> None:
            elapsed_ms = (time.perf_counter() - started) * 1000
            classes = served.schema.classes or []
            records = [
                ShadowRecord(
                    pid,
                    served.name,
                    served.version,
                    plain_value(labels[i]),
                    _probabilities(classes, proba, i),
                    elapsed_ms,
                )
                for i, pid in enumerate(ids)
            ]
            log = self.holder.get("log")
            if log is None:
                raise LogFull("the prediction log is closed")
            log.submit(records)
            self.metrics.shadow_predictions += len(records)

        try:
            if runner is None:
                fut = self.batcher.ask(served, _frame(rows, served.schema.features), logged)
            else:
                fut = runner.ask(rows, logged)
        except ModelProcessGone as exc:
            self._failed(served, exc)
            self.revive(runner)  # type: ignore[arg-type]
            return
        self.pending.add(fut)
        fut.add_done_callback(functools.partial(self._done, slot))

    def _done(self, slot: Slot, fut: asyncio.Future[Any]) -> None:
        self.pending.discard(fut)
        error = fut.exception() if not fut.cancelled() else asyncio.CancelledError("cancelled")
        if error is None:
            return
        self._failed(slot[0], error)
        if isinstance(error, ModelProcessGone) and slot[1] is not None:
            self.revive(slot[1])

    def _failed(self, served: Served, error: BaseException) -> None:
        self.metrics.shadow_errors += 1
        if not self.told:
            self.told = True
            print(
                f"flywheel serve: the shadow run of {served.name} v{served.version} failed "
                f"({type(error).__name__}: {_first_line(error)}); its request was answered. "
                "Further shadow failures are only counted (flywheel_shadow_errors_total on /metrics)",
                file=sys.stderr,
                flush=True,
            )

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` seconds) for the shadow runs in flight to be handed to the log."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout)
