"""The store: run history, evaluations and the model registry in SQLite (default) or PostgreSQL,
via SQLAlchemy 2.

The store lives at ``.flywheel/flywheel.db`` next to the project file, in WAL
mode so a server and the CLI can read while one writes; a team points
``store:`` in ``flywheel.yaml`` (or ``$FLYWHEEL_STORE``) at a PostgreSQL database
instead. It is a sink and a source of history, never a channel between stages.

Opening one checks (and creates or migrates) its schema, which ``_schema`` holds
with its versions; the queries are ``_runs`` (run history) and ``_models``
(saved versions and aliases), put together here as :class:`Store`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError

from flywheel.errors import StoreError
from flywheel.registry._models import ModelQueries
from flywheel.registry._runs import RunQueries
from flywheel.registry._schema import DB_NAME, prepare_schema, sqlite_pragmas

if TYPE_CHECKING:
    from flywheel.prediction_log import LogLocation
    from flywheel.project import Project

__all__ = [
    "STORE_ENV",
    "SUPPORTED",
    "Store",
    "has_store",
    "log_location",
    "open_store",
    "project_store",
    "shown_url",
    "store_file",
    "store_location",
]


class Store(RunQueries, ModelQueries):
    """An opened, version-checked store. Use :func:`open_store` to get one."""


def store_file(location: str | Path) -> Path | None:
    """The SQLite file a store location means (a folder: its ``flywheel.db``); None for a URL."""
    if "://" in str(location):
        return None
    path = Path(location)
    return path if path.suffix == ".db" else path / DB_NAME


SUPPORTED = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


def shown_url(url: str) -> str:
    """A database URL as it may be printed: the password masked (``***``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@")[-1]


def _engine_for(url: str) -> tuple[Engine, str]:
    """An engine for a database URL of a supported dialect (PostgreSQL through psycopg 3), with the
    URL as it may be printed.

    Raises
    ------
    StoreError
        When the URL cannot be parsed, names another database, or its driver is not installed.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = shown_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(f"store {shown!r}: not a database URL; use {SUPPORTED}") from None
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # plain postgresql:// means psycopg 3 here
    if parsed.drivername not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise StoreError(
            f"store {shown!r}: the {parsed.drivername!r} database is not supported; use {SUPPORTED}"
        )
    try:
        if parsed.get_backend_name() == "postgresql":
            # A store that cannot be reached says so in seconds, before anything is fitted.
            return create_engine(parsed, connect_args={"connect_timeout": 10}, pool_pre_ping=True), shown
        return create_engine(parsed), shown
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"store {shown!r}: needs the {exc.name!r} package; pip install 'ml-flywheel[postgres]'"
        ) from None


def open_store(location: str | Path, *, create: bool = True) -> Store:
    """Open (and create or migrate) the store at a folder, a ``.db`` file or a database URL.

    A folder means ``<folder>/flywheel.db``. URLs are SQLite (``sqlite:///PATH``) or PostgreSQL
    (``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``; ``postgresql://`` means the same).

    Raises
    ------
    StoreError
        When the store was written by a newer flywheel, is not a flywheel store, cannot be
        reached (the URL is named with its password masked), or its URL names another database.
    """
    path = store_file(location)
    root = None
    if path is None:
        engine, shown = _engine_for(str(location))
    else:
        if not create and not path.exists():
            raise StoreError(f"{path}: no flywheel store here yet; run `flywheel run` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        engine, shown, root = create_engine(f"sqlite:///{path}"), str(path), path.parent.resolve()
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    try:
        prepare_schema(engine, shown, create)
    except (OperationalError, DatabaseError, InterfaceError) as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise StoreError(f"{shown}: cannot be opened as a flywheel store: {reason}") from None
    except StoreError:
        engine.dispose()
        raise
    return Store(engine, shown, root)


STORE_ENV = "FLYWHEEL_STORE"


def store_location(project: Project) -> str | Path:
    """Where a project's store is: ``$FLYWHEEL_STORE``, else the file's ``store:`` URL, else the
    folder ``.flywheel`` beside the project file (its ``flywheel.db``)."""
    return os.environ.get(STORE_ENV) or project.store or project.store_dir


def has_store(project: Project) -> bool:
    """Whether the project's store exists already (a database URL always counts: it is opened to
    find out, and a store that cannot be reached is an error, not an empty history)."""
    location = store_location(project)
    path = store_file(location)
    return path is None or path.exists()


def project_store(project: Project, *, create: bool = True) -> Store:
    """Open the project's store (:func:`store_location`).

    Raises
    ------
    StoreError
        As :func:`open_store`; with ``create=False``, also when there is no store yet.
    """
    return open_store(store_location(project), create=create)


def log_location(project: Project) -> LogLocation:
    """Where a project's prediction log is: the tables of its store's database when the store is
    PostgreSQL (one database for a team: the service's workers and the CLI on any machine see the
    same log), else the file ``.flywheel/predictions.db`` beside the project file.

    Raises
    ------
    StoreError
        When the store's URL cannot be parsed or names another database.
    """
    from flywheel.prediction_log import LOG_NAME, PostgresLog

    location = store_location(project)
    if store_file(location) is not None:
        return project.store_dir / LOG_NAME
    engine, shown = _engine_for(str(location))
    try:
        if engine.dialect.name != "postgresql":  # a sqlite:/// URL: the log stays a file of its own
            return project.store_dir / LOG_NAME
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresLog(url, shown)
    finally:
        engine.dispose()
