"""The store: run history and evaluations in SQLite (default) via SQLAlchemy 2.

The store lives at ``.flywheel/flywheel.db`` next to the project file, in WAL
mode so a server and the CLI can read while one writes. It is a sink and a
source of history, never a channel between stages.

The schema is versioned from day one in a ``meta`` table. A fresh store is
created at the current version; an older one is migrated forward step by step,
in one transaction; a store written by a *newer* flywheel is refused with a
clear error before anything is written, so an old binary never corrupts it.
Later features add their tables (registry, prediction log, feedback, review
queue) as new migrations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from flywheel.errors import StoreError
from flywheel.evaluation import Evaluation

__all__ = [
    "AliasRow",
    "DB_NAME",
    "EvaluationRow",
    "ModelRow",
    "ObjectiveVersionRow",
    "PhaseEventRow",
    "RunRow",
    "SCHEMA_VERSION",
    "RunRecord",
    "ScoreRow",
    "Store",
    "open_store",
    "store_file",
]

DB_NAME = "flywheel.db"
SCHEMA_VERSION = 4


@dataclass(frozen=True)
class RunRecord:
    """What the store keeps of a run: who and when, the fingerprints, the headline, every evaluation."""

    run_id: str
    project: str
    started_at: datetime
    finished_at: datetime
    flywheel_version: str
    data_fingerprint: str
    split_fingerprint: str
    objective_version: str
    optimize_metric: str
    best_model: str | None
    best_value: float | None
    verdict: str
    report_path: Path | None
    result: dict[str, Any]  # the whole run, JSON-ready
    evaluations: list[Evaluation]


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class Meta(Base):
    """Key-value facts about the store itself, such as ``schema_version``."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    """One execution of the main job."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    flywheel_version: Mapped[str] = mapped_column(String(32))
    data_fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    split_fingerprint: Mapped[str] = mapped_column(String(32))
    objective_version: Mapped[str] = mapped_column(String(32))
    optimize_metric: Mapped[str] = mapped_column(String(64))
    best_model: Mapped[str | None] = mapped_column(String(64))
    best_value: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(16))
    report_path: Mapped[str | None] = mapped_column(Text)
    result_json: Mapped[str] = mapped_column(Text)
    evaluations: Mapped[list[EvaluationRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )


class EvaluationRow(Base):
    """One candidate evaluated in one run."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    data_fingerprint: Mapped[str] = mapped_column(String(32))
    split_fingerprint: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    notes_json: Mapped[str] = mapped_column(Text, default="[]")
    run: Mapped[RunRow] = relationship(back_populates="evaluations")
    scores: Mapped[list[ScoreRow]] = relationship(back_populates="evaluation", cascade="all, delete-orphan")


class ScoreRow(Base):
    """A metric value on a split (``valid``, ``test``) or a systems metric (split ``systems``).

    ``lower``/``upper`` hold the confidence interval when one was computed.
    """

    __tablename__ = "scores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    split: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    evaluation: Mapped[EvaluationRow] = relationship(back_populates="scores")


class ObjectiveVersionRow(Base):
    """One version of a project's objective: the formula, when it was first used, and why."""

    __tablename__ = "objective_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(32))
    formula_json: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)


def _add_objective_versions(conn: Connection) -> None:
    ObjectiveVersionRow.__table__.create(conn)  # type: ignore[attr-defined]


class ModelRow(Base):
    """A fitted model saved by flywheel: an artifact file and what it was judged on."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    data_fingerprint: Mapped[str] = mapped_column(String(32))
    split_fingerprint: Mapped[str] = mapped_column(String(32))
    objective_version: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasRow(Base):
    """An alias (champion, challenger, or any name) pointing at a saved model; forced moves are marked."""

    __tablename__ = "aliases"
    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    forced: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)


def _add_registry(conn: Connection) -> None:
    ModelRow.__table__.create(conn)  # type: ignore[attr-defined]
    AliasRow.__table__.create(conn)  # type: ignore[attr-defined]


class PhaseEventRow(Base):
    """A recorded move between lifecycle phases (a loop-back, or a step forward), with its reason."""

    __tablename__ = "phase_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    from_phase: Mapped[str] = mapped_column(String(16))
    to_phase: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)


def _add_phase_events(conn: Connection) -> None:
    PhaseEventRow.__table__.create(conn)  # type: ignore[attr-defined]


# Migration N brings a store from version N-1 to N. A fresh store is created whole at the
# current version; an older one runs each step in order, in one transaction.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _add_objective_versions,
    3: _add_registry,
    4: _add_phase_events,
}


def _model_dict(row: ModelRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "path": row.path,
        "data_fingerprint": row.data_fingerprint,
        "split_fingerprint": row.split_fingerprint,
        "objective_version": row.objective_version,
        "run_id": row.run_id,
        "created_at": row.created_at.isoformat(),
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """An opened, version-checked store. Use :func:`open_store` to get one."""

    def __init__(self, engine: Engine, location: str) -> None:
        self.engine = engine
        self.location = location

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar_one())

    def save_run(self, run: RunRecord) -> None:
        """Write a run and all its evaluations in one transaction."""
        row = RunRow(
            id=run.run_id,
            project=run.project,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status="ok",
            flywheel_version=run.flywheel_version,
            data_fingerprint=run.data_fingerprint,
            split_fingerprint=run.split_fingerprint,
            objective_version=run.objective_version,
            optimize_metric=run.optimize_metric,
            best_model=run.best_model,
            best_value=run.best_value,
            verdict=run.verdict,
            report_path=str(run.report_path) if run.report_path else None,
            result_json=json.dumps(run.result, default=str),
        )
        for ev in run.evaluations:
            er = EvaluationRow(
                model=ev.name,
                role=ev.role,
                kind=ev.kind,
                description=ev.description,
                data_fingerprint=run.data_fingerprint,
                split_fingerprint=run.split_fingerprint,
                error=ev.error,
                notes_json=json.dumps(list(ev.notes)),
            )
            for split, values in ev.metrics.items():
                for m, v in values.items():
                    low, high = ev.intervals.get(split, {}).get(m, (None, None))
                    er.scores.append(ScoreRow(split=split, metric=m, value=v, lower=low, upper=high))
            spans = ev.intervals.get("systems", {})
            er.scores.extend(
                ScoreRow(
                    split="systems",
                    metric=m,
                    value=v,
                    lower=spans.get(m, (None, None))[0],
                    upper=spans.get(m, (None, None))[1],
                )
                for m, v in ev.systems.items()
            )
            row.evaluations.append(er)
        with self.session() as s:
            s.add(row)

    def set_report_path(self, run_id: str, path: Path) -> None:
        """Record where a run's report was written."""
        with self.session() as s:
            run = s.get(RunRow, run_id)
            if run is not None:
                run.report_path = str(path)

    def record_objective(
        self, project: str, version: str, formula: dict[str, Any], reason: str | None, when: datetime
    ) -> str | None:
        """Store an objective version the first time it is used; return the previous one if it changed."""
        with self.session() as s:
            rows = s.scalars(
                select(ObjectiveVersionRow)
                .where(ObjectiveVersionRow.project == project)
                .order_by(ObjectiveVersionRow.id)
            ).all()
            if rows and rows[-1].version == version:
                return None
            s.add(
                ObjectiveVersionRow(
                    project=project,
                    version=version,
                    first_seen=when,
                    reason=reason,
                    formula_json=json.dumps(formula, sort_keys=True),
                )
            )
            return rows[-1].version if rows else None

    def objective_log(self, project: str) -> list[dict[str, Any]]:
        """The project's objective versions, oldest first, with how many runs each judged."""
        from sqlalchemy import func

        with self.session() as s:
            counts = dict(
                s.execute(
                    select(RunRow.objective_version, func.count())
                    .where(RunRow.project == project)
                    .group_by(RunRow.objective_version)
                ).all()
            )
            return [
                {
                    "version": r.version,
                    "first_seen": r.first_seen.isoformat(),
                    "reason": r.reason,
                    "formula": json.loads(r.formula_json),
                    "runs": int(counts.get(r.version, 0)),
                }
                for r in s.scalars(
                    select(ObjectiveVersionRow)
                    .where(ObjectiveVersionRow.project == project)
                    .order_by(ObjectiveVersionRow.id)
                )
            ]

    def register_model(
        self,
        project: str,
        name: str,
        version: int,
        path: Path,
        data_fingerprint: str,
        split_fingerprint: str,
        objective_version: str,
        run_id: str,
        when: datetime,
    ) -> dict[str, Any]:
        """Record a saved artifact as ``version`` of ``name`` (from :meth:`next_model_version`)."""
        with self.session() as s:
            row = ModelRow(
                project=project,
                name=name,
                version=version,
                path=str(path),
                data_fingerprint=data_fingerprint,
                split_fingerprint=split_fingerprint,
                objective_version=objective_version,
                run_id=run_id,
                created_at=when,
            )
            s.add(row)
            s.flush()
            return _model_dict(row)

    def next_model_version(self, project: str, name: str) -> int:
        """The version the next artifact of ``name`` will get."""
        from sqlalchemy import func

        with self.session() as s:
            latest = s.scalar(
                select(func.max(ModelRow.version)).where(ModelRow.project == project, ModelRow.name == name)
            )
            return int(latest or 0) + 1

    def latest_model(self, project: str, name: str) -> dict[str, Any] | None:
        """The newest saved version of ``name``."""
        with self.session() as s:
            row = s.scalars(
                select(ModelRow)
                .where(ModelRow.project == project, ModelRow.name == name)
                .order_by(ModelRow.version.desc())
            ).first()
            return None if row is None else _model_dict(row)

    def set_alias(
        self,
        project: str,
        alias: str,
        model_id: int,
        when: datetime,
        *,
        forced: bool = False,
        note: str | None = None,
    ) -> None:
        """Point ``alias`` at a saved model (replacing where it pointed before)."""
        with self.session() as s:
            row = s.get(AliasRow, (project, alias))
            if row is None:
                row = AliasRow(project=project, alias=alias)
                s.add(row)
            row.model_id, row.set_at, row.forced, row.note = model_id, when, int(forced), note

    def get_alias(self, project: str, alias: str) -> dict[str, Any] | None:
        """The saved model an alias points at, with how it got there."""
        with self.session() as s:
            row = s.get(AliasRow, (project, alias))
            if row is None:
                return None
            model = s.get(ModelRow, row.model_id)
            assert model is not None
            return {
                **_model_dict(model),
                "alias": alias,
                "set_at": row.set_at.isoformat(),
                "forced": bool(row.forced),
                "note": row.note,
            }

    def list_models(self, project: str) -> list[dict[str, Any]]:
        """Saved models, newest first, with the aliases pointing at each."""
        with self.session() as s:
            aliases: dict[int, list[str]] = {}
            for a in s.scalars(select(AliasRow).where(AliasRow.project == project)):
                aliases.setdefault(a.model_id, []).append(a.alias + (" (forced)" if a.forced else ""))
            rows = s.scalars(
                select(ModelRow)
                .where(ModelRow.project == project)
                .order_by(ModelRow.created_at.desc(), ModelRow.id.desc())
            )
            return [{**_model_dict(r), "aliases": sorted(aliases.get(r.id, []))} for r in rows]

    def list_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, as plain dicts."""
        query = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.session() as s:
            return [
                {
                    "id": r.id,
                    "project": r.project,
                    "started_at": r.started_at.isoformat(),
                    "data_fingerprint": r.data_fingerprint,
                    "split_fingerprint": r.split_fingerprint,
                    "objective_version": r.objective_version,
                    "optimize": r.optimize_metric,
                    "best_model": r.best_model,
                    "best_value": r.best_value,
                    "verdict": r.verdict,
                    "report_path": r.report_path,
                }
                for r in s.scalars(query)
            ]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """A stored run's full result, or ``None``."""
        with self.session() as s:
            run = s.get(RunRow, run_id)
            return None if run is None else dict(json.loads(run.result_json))

    def record_phase(self, project: str, when: datetime, from_phase: str, to_phase: str, reason: str) -> None:
        """Record a move between lifecycle phases."""
        with self.session() as s:
            s.add(
                PhaseEventRow(
                    project=project, at=when, from_phase=from_phase, to_phase=to_phase, reason=reason
                )
            )

    def phase_events(self, project: str) -> list[dict[str, Any]]:
        """Recorded phase moves, oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(PhaseEventRow).where(PhaseEventRow.project == project).order_by(PhaseEventRow.id)
            )
            return [
                {"at": r.at.isoformat(), "from": r.from_phase, "to": r.to_phase, "reason": r.reason}
                for r in rows
            ]

    def run_summaries(self, project: str) -> list[dict[str, Any]]:
        """Each run of ``project``, oldest first, with how many of its models were candidates."""
        from sqlalchemy import func

        with self.session() as s:
            counts = dict(
                s.execute(
                    select(EvaluationRow.run_id, func.count())
                    .where(EvaluationRow.role == "candidate")
                    .group_by(EvaluationRow.run_id)
                ).all()
            )
            rows = s.scalars(
                select(RunRow).where(RunRow.project == project).order_by(RunRow.started_at, RunRow.id)
            )
            return [
                {"id": r.id, "started_at": r.started_at.isoformat(), "candidates": int(counts.get(r.id, 0))}
                for r in rows
            ]

    def latest_run(self, project: str) -> dict[str, Any] | None:
        """The newest stored run of ``project`` (its full result), or ``None``."""
        with self.session() as s:
            row = s.scalars(
                select(RunRow)
                .where(RunRow.project == project)
                .order_by(RunRow.started_at.desc(), RunRow.id.desc())
            ).first()
            return None if row is None else dict(json.loads(row.result_json))

    def count(self, table: type[Base]) -> int:
        """Rows in one of the store's tables (for checks and tests)."""
        from sqlalchemy import func

        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def _prepare(engine: Engine, location: str, create: bool) -> None:
    tables = set(inspect(engine).get_table_names())
    if not tables:
        if not create:
            raise StoreError(f"{location}: no flywheel store here yet; run `flywheel run` first")
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
            conn.execute(
                text("INSERT INTO meta(key, value) VALUES ('schema_version', :v)"), {"v": str(SCHEMA_VERSION)}
            )
        return
    if "meta" not in tables:
        raise StoreError(
            f"{location}: is not a flywheel store (no meta table); move it aside or pick another path"
        )
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar_one_or_none()
    version = int(raw) if raw is not None and str(raw).isdigit() else None
    if version is None:
        raise StoreError(f"{location}: has no valid schema_version; it is not a store flywheel can read")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{location}: was written by a newer flywheel (store schema v{version}); this flywheel "
            f"reads up to v{SCHEMA_VERSION}. Upgrade flywheel (pip install -U ml-flywheel)"
        )
    if version < SCHEMA_VERSION:
        with engine.begin() as conn:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
            conn.execute(
                text("UPDATE meta SET value=:v WHERE key='schema_version'"), {"v": str(SCHEMA_VERSION)}
            )


def store_file(location: str | Path) -> Path | None:
    """The SQLite file a store location means (a folder: its ``flywheel.db``); None for a URL."""
    if "://" in str(location):
        return None
    path = Path(location)
    return path if path.suffix == ".db" else path / DB_NAME


def open_store(location: str | Path, *, create: bool = True) -> Store:
    """Open (and create or migrate) the store at a folder, a ``.db`` file or a database URL.

    A folder means ``<folder>/flywheel.db``. URLs (``postgresql+psycopg://…``)
    are passed to SQLAlchemy as they are.

    Raises
    ------
    StoreError
        When the store was written by a newer flywheel, or is not a flywheel store.
    """
    text_loc = str(location)
    path = store_file(location)
    if path is None:
        url, shown = text_loc, text_loc.split("@")[-1]
    else:
        if not create and not path.exists():
            raise StoreError(f"{path}: no flywheel store here yet; run `flywheel run` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        url, shown = f"sqlite:///{path}", str(path)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _prepare(engine, shown, create)
    except (OperationalError, DatabaseError) as exc:
        engine.dispose()
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        raise StoreError(f"{shown}: cannot be opened as a flywheel store: {reason}") from None
    except StoreError:
        engine.dispose()
        raise
    return Store(engine, shown)
