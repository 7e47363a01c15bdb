"""The lifecycle: four phases, the current one inferred from what exists, and recorded loop-backs.

Phases: **planning** (a project file), **data** (the data loads and is split), **training**
(models were evaluated against the baselines), **deployment** (a champion was promoted, or
predictions are being served). The phase is read from artifacts, not declared, so it cannot go
stale. Moving back ("labels unreliable → back to data") is a decision a person makes: it is
recorded with its reason, and holds until an artifact of a later phase appears after it. From
deployment, `flywheel monitor` proposes such moves from what it sees (``_proposals``); a person
accepts one, and it is recorded like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from flywheel.errors import FlywheelError, ProjectError
from flywheel.project import Project

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Gathered",
    "PHASES",
    "Phase",
    "PhaseState",
    "gather",
    "infer_phase",
    "stored_phase",
    "validate_move",
]

Phase = Literal["planning", "data", "training", "deployment"]
PHASES: tuple[Phase, ...] = ("planning", "data", "training", "deployment")


@dataclass(frozen=True)
class PhaseState:
    """The current phase, why, and the timeline of artifacts and recorded moves."""

    phase: Phase
    reason: str
    reached: dict[str, str | None]  # phase -> when its first artifact appeared (ISO time) or None
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def infer_phase(
    *,
    data_loads: bool,
    runs: list[dict[str, Any]] | None = None,
    champion: dict[str, Any] | None = None,
    predictions_logged: int = 0,
    events: list[dict[str, Any]] | None = None,
) -> PhaseState:
    """The phase from the artifacts: ``runs`` as listed by the store (each with ``started_at`` and
    ``candidates``: how many of its models were the user's), the ``champion`` alias, logged
    predictions, and recorded phase ``events`` (``at``, ``from``, ``to``, ``reason``)."""
    runs = runs or []
    events = events or []
    reached: dict[str, datetime | None] = dict.fromkeys(PHASES)
    timeline: list[dict[str, Any]] = []
    if data_loads:
        starts = [w for w in (_when(r["started_at"]) for r in runs) if w is not None]
        first = min(starts, default=None)
        reached["data"] = first or datetime.min.replace(tzinfo=UTC)
        if first:
            timeline.append(
                {"at": first.isoformat(), "what": "first run: data loaded and split", "phase": "data"}
            )
    trained = sorted(_when(r["started_at"]) for r in runs if r.get("candidates"))  # type: ignore[type-var]
    if trained:
        reached["training"] = trained[0]
        timeline.append(
            {"at": trained[0].isoformat(), "what": "first run with candidate models", "phase": "training"}  # type: ignore[union-attr]
        )
    if champion is not None:
        at = _when(champion.get("set_at"))
        reached["deployment"] = at
        timeline.append(
            {
                "at": at.isoformat() if at else None,
                "what": f"champion: {champion['name']} v{champion['version']}",
                "phase": "deployment",
            }
        )
    elif predictions_logged:
        reached["deployment"] = datetime.now(UTC)
    furthest: Phase = "planning"
    for p in PHASES:
        if reached[p] is not None:
            furthest = p
    reason = {
        "planning": "a project file and no data that loads yet",
        "data": "the data loads; no candidate model evaluated yet",
        "training": "candidate models were evaluated against the baselines",
        "deployment": "a champion was promoted" if champion is not None else "predictions are being served",
    }[furthest]
    phase: Phase = furthest
    for e in events:
        at = _when(e["at"])
        timeline.append({"at": e["at"], "what": f"back to {e['to']}: {e['reason']}", "phase": e["to"]})
        # A loop-back holds until a later phase's first artifact appears after it.
        later = [p for p in PHASES[PHASES.index(e["to"]) + 1 :] if reached[p] is not None and at is not None]
        if at is not None and all(reached[p] <= at for p in later):  # type: ignore[operator]
            phase, reason = e["to"], f"moved back from {e['from']}: {e['reason']}"
    timeline.sort(key=lambda t: t["at"] or "")
    return PhaseState(
        phase,
        reason,
        {
            p: (v.isoformat() if v is not None and v.year > 1 else ("yes" if v is not None else None))
            for p, v in reached.items()
        },
        timeline,
    )


def validate_move(current: Phase, to: str, reason: str, *, given: str | None = None) -> Phase:
    """Check a loop-back: ``to`` must be an earlier phase and the reason must say why.

    ``given`` is how the person named the move, for the error (default ``--to TO``; an accepted
    proposal says ``--accept ID (to TO)``).

    Raises
    ------
    ProjectError
        Naming what was given and what is allowed.
    """
    if to not in PHASES:
        raise ProjectError(f"--to must be one of {', '.join(PHASES)}; got {to!r}")
    if not reason.strip():
        raise ProjectError('--reason must say why the project goes back (e.g. "labels unreliable")')
    if PHASES.index(to) >= PHASES.index(current):
        earlier = ", ".join(PHASES[: PHASES.index(current)]) or "none"
        said = given or f"--to {to}"
        raise ProjectError(f"{said} is not before the current phase {current}; earlier phases: {earlier}")
    return to


@dataclass(frozen=True)
class Gathered:
    """What exists for a project: its latest run, the artifacts readiness reads, the phase, the
    first rows of its data (for the personal-data scan; ``None`` when the data does not load), and
    the recorded phase moves (as ``store.phase_events`` lists them)."""

    run: dict[str, Any] | None
    artifacts: dict[str, Any]
    phase: PhaseState
    sample: pd.DataFrame | None
    events: list[dict[str, Any]] = field(default_factory=list)


def gather(project: Project, *, read_data: bool = True) -> Gathered:
    """Read the project's data and store (nothing is created: a project with no store has no run).

    ``read_data=False`` reads the store alone when it holds a run (that run loaded the data): what
    `flywheel phase show` needs, without loading the data or the libraries that read it.
    """
    from flywheel.registry import flywheel_summary, has_store, project_store
    from flywheel.scoping._proposals import monitored

    stored = has_store(project)
    sample: pd.DataFrame | None = None
    if read_data or not stored:
        from flywheel.data import load_dataset

        try:
            sample = load_dataset(project.data, project.root).frame.head(2000)
        except FlywheelError:
            sample = None
        data_loads = sample is not None
    else:
        data_loads = True  # refined below: a store with no run says nothing about the data
    artifacts: dict[str, Any] = {"data_checked": data_loads}
    if not stored:
        return Gathered(None, artifacts, infer_phase(data_loads=data_loads), sample)
    store = project_store(project, create=False)
    try:
        run = store.latest_run(project.project)
        runs = store.run_summaries(project.project)
        champion = store.get_alias(project.project, "champion")
        models = store.list_models(project.project)
        events = store.phase_events(project.project)
    finally:
        store.close()
    if not read_data and not runs:
        return gather(project)
    artifacts, state = stored_phase(
        flywheel_summary(project),
        data_loads=data_loads,
        runs=runs,
        champion=champion,
        events=events,
        models=bool(models),
        monitored=monitored(project, champion),
    )
    return Gathered(run, artifacts, state, sample, events)


def stored_phase(
    loop: dict[str, Any] | None,
    *,
    data_loads: bool,
    runs: list[dict[str, Any]],
    champion: dict[str, Any] | None,
    events: list[dict[str, Any]],
    models: bool,
    monitored: bool = False,
) -> tuple[dict[str, Any], PhaseState]:
    """Readiness artifacts and the lifecycle phase from what the store holds and ``loop``, the served
    loop's summary (``flywheel.registry.flywheel_summary``): one reading for a run and for assess.

    ``monitored``: `flywheel monitor` watched the current champion
    (:func:`flywheel.scoping.monitored`)."""
    from flywheel.registry import loop_counts

    counts = loop_counts(loop)
    artifacts = {
        "data_checked": data_loads,
        "models": models,
        "champion": champion is not None,
        "monitored": monitored,
        **counts,
    }
    state = infer_phase(
        data_loads=data_loads,
        runs=runs,
        champion=champion,
        predictions_logged=counts["predictions_logged"],
        events=events,
    )
    return artifacts, state
