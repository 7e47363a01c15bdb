"""Proposed loop-backs: what `flywheel monitor` saw in production, as moves a person accepts.

Phase 4 watches the champion; when what it sees calls for earlier work (the inputs drifted → data;
live quality fell below the test estimate → data; a piloted challenger lost to its lab estimate →
training; outcomes did not move with correctness → planning), it does not move the project by
itself. It writes its latest result to ``.flywheel/monitor/latest.json`` (one file, written whole,
read here) and proposes the moves; `flywheel phase show` lists them and `flywheel phase back
--accept ID` records one. A proposal is open until a recorded phase move carries its id and was
made at or after that monitor run, so a newer run that proposes the same move again is open again.

The store keeps a move's reason as text and nothing else, so the id travels in that text, as a
trailing ``[proposal ID]`` tag: exact, and readable in the timeline.

A file that does not parse as a monitor result is treated as absent: the monitor is a separate
command, possibly of another version, and a bad file must never stop the commands that read it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flywheel.project import Project

__all__ = [
    "accepted_reason",
    "drift_region",
    "monitor_file",
    "monitor_problem",
    "monitored",
    "proposals",
    "read_monitor",
]

_ID = r"[A-Za-z0-9][\w.-]*"
_TAG = re.compile(rf"\[proposal ({_ID})\]\s*$")


class _Proposal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(pattern=rf"^{_ID}$")]
    to: Literal["planning", "data", "training"]
    reason: Annotated[str, Field(min_length=1)]
    evidence: list[str] = []
    window: str | None = None


class _Champion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    name: str = ""
    version: int | None = None


class _Region(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feature: str
    kind: Literal["numeric", "categorical"]
    ranges: list[tuple[float, float]] = []
    values: list[str | int | float | bool] = []

    @field_validator("ranges")
    @classmethod
    def _ordered(cls, ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for low, high in ranges:
            if not low <= high:
                raise ValueError(f"a range must run from low to high; got [{low}, {high}]")
        return ranges


class _Monitor(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: datetime
    champion: _Champion | None = None
    verdict: Literal["ok", "watch", "act", "undecided"]
    proposals: list[_Proposal] = []
    drift_region: list[_Region] = []

    @field_validator("at")
    @classmethod
    def _aware(cls, at: datetime) -> datetime:
        return at if at.tzinfo else at.replace(tzinfo=UTC)


def monitor_file(project: Project) -> Path:
    """Where `flywheel monitor` writes its latest result: ``.flywheel/monitor/latest.json``."""
    from flywheel.registry import MONITOR_FILE

    return project.store_dir / MONITOR_FILE


def _load(project: Project) -> tuple[dict[str, Any] | None, str | None]:
    """(the monitor result, None), (None, why it was set aside), or (None, None) when absent."""
    path = monitor_file(project)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path}: cannot be read ({exc}); ignored"
    try:
        parsed = _Monitor.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        return None, f"{path}: not JSON ({exc.msg}, line {exc.lineno}); ignored"
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        return None, f"{path}: not a monitor result ({where}: {first['msg']}); ignored"
    raw = parsed.model_dump()
    raw["at"] = parsed.at.isoformat()
    return raw, None


def read_monitor(project: Project) -> dict[str, Any] | None:
    """The latest monitor result, checked, or ``None`` when there is none or it does not parse.

    Keys: ``at`` (ISO time, with its zone), ``champion`` (``id``, ``name``, ``version``, or
    ``None``), ``verdict`` (ok, watch, act, undecided), ``proposals`` (each ``id``, ``to``,
    ``reason``, ``evidence``, ``window``) and ``drift_region`` (each ``feature``, ``kind``,
    ``ranges``, ``values``). :func:`monitor_problem` says why a file that exists was set aside.
    """
    return _load(project)[0]


def monitor_problem(project: Project) -> str | None:
    """One line saying why the monitor file was set aside; ``None`` when it is absent or fine."""
    return _load(project)[1]


def _accepted(events: list[dict[str, Any]], since: datetime) -> set[str]:
    """Ids of the proposals that a phase move recorded at or after ``since`` accepted."""
    ids = set()
    for e in events:
        found = _TAG.search(str(e.get("reason", "")))
        at = datetime.fromisoformat(str(e["at"]))
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        if found and at >= since:
            ids.add(found.group(1))
    return ids


def proposals(project: Project, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest monitor run's proposals that no recorded phase move has accepted yet.

    ``events`` are the project's phase moves as the store lists them (``store.phase_events``).
    A move accepts a proposal when its reason ends in ``[proposal ID]`` (what
    :func:`accepted_reason` writes) and it was recorded at or after the monitor run's ``at``.
    """
    monitor = read_monitor(project)
    if monitor is None:
        return []
    done = _accepted(events, datetime.fromisoformat(monitor["at"]))
    seen: set[str] = set()
    open_ = []
    for p in monitor["proposals"]:
        if p["id"] not in done and p["id"] not in seen:
            open_.append(p)
        seen.add(p["id"])
    return open_


def accepted_reason(proposal: dict[str, Any], note: str = "") -> str:
    """The reason a move that accepts ``proposal`` records: its reason, its evidence, the person's
    ``note`` if any, and the ``[proposal ID]`` tag that marks it accepted."""
    text = proposal["reason"].strip()
    if proposal.get("evidence"):
        text += "; evidence: " + "; ".join(e.strip() for e in proposal["evidence"])
    if note.strip():
        text += f"; note: {note.strip()}"
    return f"{text} [proposal {proposal['id']}]"


def monitored(project: Project, champion: dict[str, Any] | None) -> bool:
    """Whether a monitor result exists for ``champion`` (the store's alias entry, with its ``id``)."""
    if champion is None:
        return False
    monitor = read_monitor(project)
    watched = (monitor or {}).get("champion")
    return watched is not None and watched["id"] == champion["id"]


def drift_region(project: Project, champion_id: int) -> list[dict[str, Any]]:
    """Where the latest monitor run saw the inputs drift, when it watched model ``champion_id``.

    Each entry names a ``feature`` and its drifted ``ranges`` (numeric, inclusive) or ``values``
    (categorical). Empty when there is no monitor result, or it watched another model: a region
    measured against a former champion says nothing about what the current one has learnt.
    """
    monitor = read_monitor(project)
    if monitor is None or monitor["champion"] is None or monitor["champion"]["id"] != champion_id:
        return []
    return list(monitor["drift_region"])
