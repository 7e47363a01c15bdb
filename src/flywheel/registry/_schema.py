"""The store's schema: its tables, its version, and the migrations that bring an older store forward.

The schema is versioned in a ``meta`` table and, since version 6, by Alembic
(:mod:`flywheel.registry.migrations`, one revision per version). A fresh store is
created whole at the current version; an older one, SQLite or PostgreSQL, runs
the revisions after its version in one transaction; a store written by a *newer*
flywheel is refused with a clear error before anything is written, so an old
binary never corrupts it. The queries over these tables live in ``_runs`` and
``_models``; opening a store is ``_store``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flywheel.errors import StoreError

__all__ = [
    "AliasRow",
    "Base",
    "DB_NAME",
    "EvaluationRow",
    "HEAD",
    "Meta",
    "ModelRow",
    "ObjectiveVersionRow",
    "PhaseEventRow",
    "RunRow",
    "SCHEMA_VERSION",
    "ScoreRow",
    "prepare_schema",
    "sqlite_pragmas",
]

DB_NAME = "flywheel.db"
SCHEMA_VERSION = 6
HEAD = f"{SCHEMA_VERSION:04d}"  # the newest Alembic revision (flywheel/registry/migrations/versions)


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


class ModelRow(Base):
    """A fitted model saved by flywheel: an artifact file and what it was judged on."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)  # relative to the store's folder (old rows: absolute)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the artifact's bytes (old rows: none)
    data_fingerprint: Mapped[str] = mapped_column(String(32))
    split_fingerprint: Mapped[str] = mapped_column(String(32))
    objective_version: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ux_models_version", "project", "name", "version", unique=True),)


class AliasRow(Base):
    """An alias (champion, challenger, or any name) pointing at a saved model; forced moves are marked."""

    __tablename__ = "aliases"
    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    forced: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)


class PhaseEventRow(Base):
    """A recorded move between lifecycle phases (a loop-back, or a step forward), with its reason."""

    __tablename__ = "phase_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    from_phase: Mapped[str] = mapped_column(String(16))
    to_phase: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL mode, foreign keys and a busy timeout on each new SQLite connection."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _begin_ddl(conn: Connection) -> None:
    """Open the transaction explicitly on SQLite, so its ``CREATE``/``ALTER`` statements are in it.

    Python's sqlite3 runs DDL outside any transaction unless one was begun: a process killed while
    creating or migrating a store would leave tables without the ``schema_version`` that names them.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _migrate(conn: Connection, version: int) -> None:
    """Run the Alembic revisions after ``version`` up to :data:`SCHEMA_VERSION`, on ``conn``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "flywheel.registry:migrations")
    config.attributes["connection"] = conn
    # The meta table is the record of the version (a flywheel from before Alembic reads it); the
    # alembic_version table is set from it, so a store of any age takes the same path forward.
    command.stamp(config, f"{version:04d}", purge=True)
    command.upgrade(config, HEAD)


def _create(engine: Engine) -> None:
    with engine.begin() as conn:
        _begin_ddl(conn)
        Base.metadata.create_all(conn)
        conn.execute(
            text("INSERT INTO meta(key, value) VALUES ('schema_version', :v)"), {"v": str(SCHEMA_VERSION)}
        )
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
        conn.execute(text("INSERT INTO alembic_version(version_num) VALUES (:v)"), {"v": HEAD})


def prepare_schema(engine: Engine, location: str, create: bool) -> None:
    """Create a fresh store, migrate an older one forward, or refuse one this flywheel cannot read."""
    tables = set(inspect(engine).get_table_names())
    if not tables - {"alembic_version"}:
        if not create:
            raise StoreError(f"{location}: no flywheel store here yet; run `flywheel run` first")
        _create(engine)
        return
    if "meta" not in tables:
        raise StoreError(
            f"{location}: is not a flywheel store (no meta table); move it aside or pick another path"
        )
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar_one_or_none()
        revision = (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if "alembic_version" in tables
            else None
        )
    version = int(raw) if raw is not None and str(raw).isdigit() else None
    if version is None:
        raise StoreError(f"{location}: has no valid schema_version; it is not a store flywheel can read")
    known = revision is None or (str(revision).isdigit() and int(revision) <= SCHEMA_VERSION)
    if version > SCHEMA_VERSION or not known:
        raise StoreError(
            f"{location}: was written by a newer flywheel (store schema v{version}"
            + ("" if known else f", revision {revision}")
            + f"); this flywheel reads up to v{SCHEMA_VERSION}. Upgrade flywheel (pip install -U ml-flywheel)"
        )
    if version < SCHEMA_VERSION or revision != HEAD:
        try:
            with engine.begin() as conn:
                _begin_ddl(conn)
                _migrate(conn, version)
        except RuntimeError as exc:  # a migration that cannot proceed says why, and changes nothing
            raise StoreError(f"{location}: cannot be migrated to schema v{SCHEMA_VERSION}: {exc}") from None
