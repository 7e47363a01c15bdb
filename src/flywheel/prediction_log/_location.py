"""Where the prediction log is: a SQLite file (a :class:`~pathlib.Path`), or the tables of a
PostgreSQL database (:class:`PostgresLog`) when the project's store is PostgreSQL.

The SQLite side is the log's own: raw :mod:`sqlite3`, the writer's hot path untouched. The
PostgreSQL side is psycopg 3, wrapped in :class:`PgConnection` so that one SQL text serves both:
``?`` becomes ``%s``, ``rowid`` becomes the ``seq`` column (a ``BIGSERIAL`` that numbers rows in
the order they were committed), ``INSERT OR IGNORE`` becomes ``ON CONFLICT DO NOTHING``, and
``BEGIN IMMEDIATE`` (SQLite: take the write lock now) becomes ``BEGIN`` plus a transaction-scoped
advisory lock. That lock is why ``seq`` follows commit order although several writers (one per
service worker) write at once: a reader that takes the rows after the last ``seq`` it read never
skips a row that commits later with a smaller number, so reading incrementally equals reading whole.

Only the standard library at import time (the writer imports this module only for PostgreSQL).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LogLocation",
    "LogUnreachable",
    "PgConnection",
    "PostgresLog",
    "is_postgres",
    "log_exists",
    "pg_connect",
    "writer_target",
]

_LOCK = 0x464C5957  # the advisory lock the log's write transactions (and its schema) take: "FLYW"


class LogUnreachable(Exception):
    """The PostgreSQL database of the log cannot be reached (the message names it, password masked)."""


@dataclass(frozen=True)
class PostgresLog:
    """The prediction log's tables in a PostgreSQL database.

    ``url`` is a libpq URL (``postgresql://USER:PASSWORD@HOST:PORT/DB``); ``shown`` is what may be
    printed (the password masked)."""

    url: str = field(repr=False)
    shown: str

    def __str__(self) -> str:
        return self.shown


LogLocation = Path | PostgresLog


def log_exists(location: LogLocation) -> bool:
    """Whether there is a log to read (a database always counts: its tables are made on connecting)."""
    return isinstance(location, PostgresLog) or location.exists()


def is_postgres(conn: Any) -> bool:
    """Whether a connection of :func:`~flywheel.prediction_log.connect` is PostgreSQL's."""
    return isinstance(conn, PgConnection)


@functools.lru_cache(maxsize=256)
def _pg(sql: str, params: bool) -> str:
    """SQLite's SQL text as PostgreSQL takes it (see the module's docstring)."""
    if params:  # psycopg reads placeholders (and so ``%``) only when given parameters
        sql = sql.replace("%", "%%").replace("?", "%s")
    sql = re.sub(r"\browid\b", "seq", sql)
    if "INSERT OR IGNORE" in sql:
        sql = sql.replace("INSERT OR IGNORE", "INSERT") + " ON CONFLICT DO NOTHING"
    return sql


def _pg_schema(script: str) -> str:
    """A SQLite schema script in PostgreSQL's types (REAL is 4 bytes there: times need 8)."""
    script = script.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)


class PgConnection:
    """A psycopg 3 connection (autocommit: transactions are explicit, as on the SQLite side) that
    takes the log's SQLite SQL text."""

    def __init__(self, raw: Any, location: PostgresLog) -> None:
        self.raw = raw
        self.location = location

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run one statement; its cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``)."""
        if sql == "BEGIN IMMEDIATE":  # SQLite's "the write lock now": one writing transaction at a time
            self.raw.execute("BEGIN")
            return self.raw.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
        return self.raw.execute(_pg(sql, bool(params)), params or None)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(_pg(sql, True), rows)

    def executescript(self, script: str) -> None:
        """Create tables and indexes (idempotent), one writer at a time: PostgreSQL's
        ``IF NOT EXISTS`` is not safe against another connection creating the same table."""
        with self.raw.transaction():
            self.raw.execute(f"SELECT pg_advisory_xact_lock({_LOCK + 1})")
            self.raw.execute(_pg_schema(script))

    def close(self) -> None:
        self.raw.close()


def pg_connect(location: PostgresLog, schema: str) -> PgConnection:
    """A connection to the log's database, creating the tables of ``schema`` when needed.

    Raises
    ------
    LogUnreachable
        When the database cannot be reached or psycopg is not installed.
    """
    try:
        import psycopg
    except ModuleNotFoundError:
        raise LogUnreachable(
            f"prediction log {location.shown!r}: needs the 'psycopg' package; "
            "pip install 'ml-flywheel[postgres]'"
        ) from None
    try:
        raw = psycopg.connect(location.url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LogUnreachable(f"prediction log {location.shown}: cannot be reached: {reason}") from None
    # A commit returns once it is on disk, whatever the server's default: the writer acknowledges
    # a record after its commit, and the queue's labels are feedback, so an ack must be durable.
    raw.execute("SET synchronous_commit TO on")
    conn = PgConnection(raw, location)
    conn.executescript(schema + _SEQ)
    return conn


# Rows in the order they were committed, as SQLite's rowid (see the module's docstring).
_SEQ = """
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS seq BIGSERIAL;
CREATE INDEX IF NOT EXISTS predictions_seq ON predictions(seq);
ALTER TABLE shadow ADD COLUMN IF NOT EXISTS seq BIGSERIAL;
"""


def writer_target(location: LogLocation) -> tuple[str, dict[str, str] | None]:
    """The writer script's PATH argument for a log, and the environment to start it with (None:
    this one's). A database's URL goes in the environment: a command line is visible to every user."""
    if isinstance(location, PostgresLog):
        return "-", {**os.environ, "FLYWHEEL_LOG_URL": location.url, "FLYWHEEL_LOG_SHOWN": location.shown}
    return str(location), None
