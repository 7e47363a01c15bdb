"""Loading the project file: find it, parse its YAML, validate it, and turn the first validation
error into one line naming the field, what is allowed and what was given. A loaded project's
factories and rules are checked against the trust model (:mod:`flywheel.project._trust`) from
where their modules would be found, so a file naming ``os:system`` is refused at load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from flywheel.errors import ProjectError
from flywheel.project._schema import PROJECT_FILE, Project
from flywheel.project._strict import display_path
from flywheel.project._trust import trust_refusal, untrusted

__all__ = [
    "find_project_file",
    "load_project",
    "parse_project",
]

_TYPE_WORDS = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be an integer",
    "int_parsing_size": "must be an integer of a usable size",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "finite_number": "must be a finite number",
}


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {expected}; got {given!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
        return f"must be {bounds[kind]} {shown}; got {given!r}"
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}; got {given!r}"
    return f"{err['msg']}; got {given!r}"


def _format_validation(err: ValidationError, where: str) -> str:
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = _loc(tuple(first["loc"]))
    text = _describe(first)
    line = f"{where}: {loc} {text}" if loc else f"{where}: {text}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return line


def find_project_file(path: str | os.PathLike[str] = ".") -> Path:
    """The project file at ``path``: the file itself, or ``flywheel.yaml`` inside a folder."""
    p = Path(path)
    if p.is_dir():
        p = p / PROJECT_FILE
    if not p.is_file():
        raise ProjectError(
            f"{display_path(p)}: no project file here; create one with `flywheel init` or pass its path"
        )
    return p


def parse_project(text: str, *, where: str = PROJECT_FILE) -> Project:
    """Validate project-file text; ``where`` names the file in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ProjectError(f"{where}: {at}not valid YAML: {problem}") from None
    except Exception as exc:  # PyYAML's constructors raise plain errors for e.g. `!!int ''`
        raise ProjectError(
            f"{where}: not valid YAML: a value cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    if raw is None:
        raise ProjectError(f"{where}: the file is empty; expected a mapping with project, data, objective")
    if not isinstance(raw, dict):
        raise ProjectError(
            f"{where}: must be a mapping with project, data, objective; got {type(raw).__name__}"
        )
    try:
        return Project.model_validate(raw)
    except ValidationError as exc:
        raise ProjectError(_format_validation(exc, where)) from None


def _check_code_paths(project: Project, where: str) -> None:
    """Refuse a factory or rule from outside the project folder and ``trust:`` (nothing imported)."""
    named = [(f"models[{i}].factory", m.factory) for i, m in enumerate(project.models) if m.factory]
    named += [(f"baselines.rules[{i}]", rule) for i, rule in enumerate(project.baselines.rules)]
    for field, path in named:
        if untrusted(path, folder=project.root, trust=project.trust):
            raise ProjectError(trust_refusal(field, path, where))


def load_project(path: str | os.PathLike[str] = ".") -> Project:
    """Load and validate a project file (or the ``flywheel.yaml`` in a folder).

    Raises
    ------
    ProjectError
        With one line naming the field, what is allowed and what was given.
    """
    file = find_project_file(path)
    where = display_path(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{where}: cannot be read: {exc}") from None
    project = parse_project(text, where=where)
    project._path = file.resolve()
    _check_code_paths(project, where)
    return project
