"""The connection every store query shares: the engine, where it points, and a committed session.

The run queries (``_runs``) and the model queries (``_models``) both build on it, and
:class:`~flywheel.registry._store.Store` puts them together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from flywheel.registry._schema import Base

__all__ = [
    "StoreConnection",
]


class StoreConnection:
    """An engine on a version-checked store, and the sessions the queries run in.

    ``root`` is the folder of a SQLite store's file (None for a database URL): artifact paths
    are kept relative to it, so a copied or moved project folder uses its own models.
    """

    def __init__(self, engine: Engine, location: str, root: Path | None = None) -> None:
        self.engine = engine
        self.location = location
        self.root = root

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT value FROM meta WHERE key='schema_version'")).scalar_one())

    def count(self, table: type[Base]) -> int:
        """Rows in one of the store's tables (for checks and tests)."""
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()
