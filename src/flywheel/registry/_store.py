"""The store: run history and evaluations in SQLite (default) via SQLAlchemy 2.

The store lives at ``.flywheel/flywheel.db`` next to the project file, in WAL
mode so a server and the CLI can read while one writes. It is a sink and a
source of history, never a channel between stages.

Opening one checks (and creates or migrates) its schema, which ``_schema`` holds
with its versions; the queries are ``_runs`` (run history) and ``_models``
(saved versions and aliases), put together here as :class:`Store`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.exc import DatabaseError, OperationalError

from flywheel.errors import StoreError
from flywheel.registry._models import ModelQueries
from flywheel.registry._runs import RunQueries
from flywheel.registry._schema import DB_NAME, prepare_schema, sqlite_pragmas

__all__ = [
    "Store",
    "open_store",
    "store_file",
]


class Store(RunQueries, ModelQueries):
    """An opened, version-checked store. Use :func:`open_store` to get one."""


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
    root = None
    if path is None:
        url, shown = text_loc, text_loc.split("@")[-1]
    else:
        if not create and not path.exists():
            raise StoreError(f"{path}: no flywheel store here yet; run `flywheel run` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        url, shown, root = f"sqlite:///{path}", str(path), path.parent.resolve()
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    try:
        prepare_schema(engine, shown, create)
    except (OperationalError, DatabaseError) as exc:
        engine.dispose()
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        raise StoreError(f"{shown}: cannot be opened as a flywheel store: {reason}") from None
    except StoreError:
        engine.dispose()
        raise
    return Store(engine, shown, root)
