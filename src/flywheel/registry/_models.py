"""Saved model versions in the store and the aliases (champion, challenger, any name) that point at them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from flywheel.registry._connection import StoreConnection
from flywheel.registry._schema import AliasRow, ModelRow

__all__ = [
    "ModelQueries",
    "resolved_path",
]


def _stored_path(root: Path | None, path: Path) -> str:
    """How a path is kept: relative to the store's folder (POSIX form) when it lies inside it."""
    if root is None:
        return str(path)
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def resolved_path(root: Path | None, stored: str) -> Path:
    """The absolute artifact path a stored one means, read against the store's own folder.

    A row from before paths were relative holds an absolute path; when that path is outside this
    store's folder (the project was copied or moved) and the same tail exists here, the local file
    is meant, never the original's.
    """
    path = Path(stored)
    if root is None:
        return path
    if not path.is_absolute():
        return root / path
    if path.is_relative_to(root):
        return path
    parts = path.parts
    for i in range(1, len(parts)):  # the longest tail first
        local = root.joinpath(*parts[i:])
        if local.is_file():
            return local
    return path


def _model_dict(row: ModelRow, root: Path | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "path": str(resolved_path(root, row.path)),
        "sha256": row.sha256,
        "data_fingerprint": row.data_fingerprint,
        "split_fingerprint": row.split_fingerprint,
        "objective_version": row.objective_version,
        "run_id": row.run_id,
        "created_at": row.created_at.isoformat(),
    }


class ModelQueries(StoreConnection):
    """Registering artifacts as numbered versions, and moving and reading aliases."""

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
        *,
        sha256: str | None = None,
    ) -> dict[str, Any]:
        """Record a saved artifact as ``version`` of ``name`` (saving: :meth:`register_next` picks it).

        ``path`` is kept relative to the store's folder and ``sha256`` (of the artifact's bytes)
        is checked before the artifact is loaded; entries come back with the absolute path.
        """
        facts = {
            "data_fingerprint": data_fingerprint,
            "split_fingerprint": split_fingerprint,
            "objective_version": objective_version,
            "run_id": run_id,
            "when": when,
        }
        with self.session() as s:
            return self._add_model(s, project, name, version, path, sha256, facts)

    def _add_model(
        self,
        s: Any,
        project: str,
        name: str,
        version: int,
        path: Path,
        sha256: str | None,
        facts: dict[str, Any],
    ) -> dict[str, Any]:
        row = ModelRow(
            project=project,
            name=name,
            version=version,
            path=_stored_path(self.root, path),
            sha256=sha256,
            data_fingerprint=facts["data_fingerprint"],
            split_fingerprint=facts["split_fingerprint"],
            objective_version=facts["objective_version"],
            run_id=facts["run_id"],
            created_at=facts["when"],
        )
        s.add(row)
        s.flush()
        return _model_dict(row, self.root)

    def register_next(
        self,
        project: str,
        name: str,
        write: Callable[[int], tuple[Path, str | None]],
        **facts: Any,
    ) -> dict[str, Any]:
        """Register the next version of ``name``, writing its files with ``write(version)`` (which
        returns the artifact's path and SHA-256) while the version is reserved.

        The reservation is a write lock taken first in the transaction (the ``meta`` row): two
        processes saving models at once take turns, so each writes and registers its own number,
        and a process killed on the way registers nothing. ``facts`` are
        :meth:`register_model`'s other fields (``data_fingerprint``, …, ``when``).
        """
        with self.session() as s:
            s.execute(text("UPDATE meta SET value = value WHERE key = 'schema_version'"))
            latest = s.scalar(
                select(func.max(ModelRow.version)).where(ModelRow.project == project, ModelRow.name == name)
            )
            version = int(latest or 0) + 1
            path, sha256 = write(version)
            return self._add_model(s, project, name, version, path, sha256, facts)

    def latest_model(self, project: str, name: str) -> dict[str, Any] | None:
        """The newest saved version of ``name``."""
        with self.session() as s:
            row = s.scalars(
                select(ModelRow)
                .where(ModelRow.project == project, ModelRow.name == name)
                .order_by(ModelRow.version.desc())
            ).first()
            return None if row is None else _model_dict(row, self.root)

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
        """Point ``alias`` at a saved model (replacing where it pointed before).

        One upsert statement: two writers moving the same alias at once leave it pointing at one
        of their models, whole, never at neither (and never fail on the row the other created).
        """
        values = {
            "project": project,
            "alias": alias,
            "model_id": model_id,
            "set_at": when,
            "forced": int(forced),
            "note": note,
        }
        with self.session() as s:
            insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
            statement = insert(AliasRow).values(**values)
            s.execute(
                statement.on_conflict_do_update(
                    index_elements=["project", "alias"],
                    set_={k: statement.excluded[k] for k in ("model_id", "set_at", "forced", "note")},
                )
            )

    def get_alias(self, project: str, alias: str) -> dict[str, Any] | None:
        """The saved model an alias points at, with how it got there."""
        with self.session() as s:
            row = s.get(AliasRow, (project, alias))
            if row is None:
                return None
            model = s.get(ModelRow, row.model_id)
            assert model is not None
            return {
                **_model_dict(model, self.root),
                "alias": alias,
                "set_at": row.set_at.isoformat(),
                "forced": bool(row.forced),
                "note": row.note,
            }

    def list_models(self, project: str) -> list[dict[str, Any]]:
        """Saved models, newest first, with the aliases pointing at each."""
        with self.session() as s:
            aliases: dict[int, list[str]] = {}
            forced: dict[int, list[str]] = {}
            for a in s.scalars(select(AliasRow).where(AliasRow.project == project)):
                aliases.setdefault(a.model_id, []).append(a.alias)
                if a.forced:
                    forced.setdefault(a.model_id, []).append(a.alias)
            rows = s.scalars(
                select(ModelRow)
                .where(ModelRow.project == project)
                .order_by(ModelRow.created_at.desc(), ModelRow.id.desc())
            )
            return [
                {
                    **_model_dict(r, self.root),
                    "aliases": sorted(aliases.get(r.id, [])),  # plain names
                    "forced": sorted(forced.get(r.id, [])),  # those of them moved past the gate
                }
                for r in rows
            ]
