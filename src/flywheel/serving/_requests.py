"""Reading a request: its JSON body, its rows checked against the training schema, a feedback
payload's fields and label, an outcome's fields, the OpenAPI shape of the bodies, and the error
answer.

Every refusal names the offending field and says why in one line (``{"detail": ...}``), so a
client can fix its request without reading the service's code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from flywheel.evaluation import Schema

__all__: list[str] = []


class _Refused(ValueError):
    """A request the service will not answer: the HTTP status and the one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


async def _read_json(request: Request) -> Any:
    from starlette.requests import ClientDisconnect

    try:
        body = await request.body()
    except ClientDisconnect:  # nobody is left to answer; without this, a traceback in the log
        raise ValueError("body: the client went away before sending all of it") from None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"body: not valid JSON ({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
        ) from None
    except RecursionError:  # thousands of nested brackets: no request has that shape
        raise ValueError(
            'body: nested too deeply to be a request (at most a row, or {"rows": [...]})'
        ) from None


def _validator(schema: Schema) -> Callable[[Any, str], dict[str, Any]]:
    """Checks one row against the schema; raises ValueError with the offending field and why."""
    expected = schema.features

    def check(row: Any, where: str) -> dict[str, Any]:
        if not isinstance(row, dict):
            raise ValueError(f"{where}: must be an object of feature values; got {type(row).__name__}")
        missing = [c for c in expected if c not in row]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ValueError(f"{where}.{missing[0]}: is required{more}")
        extra = [c for c in row if c not in expected]
        if extra:
            raise ValueError(f"{where}.{extra[0]}: is not a feature of this model")
        for col, kind in expected.items():
            v = row[col]
            if v is None:
                continue
            if kind == "numeric":
                if isinstance(v, bool) or not isinstance(v, int | float) or not _finite(v):
                    raise ValueError(f"{where}.{col}: must be a finite number; got {v!r}")
            elif not isinstance(v, str):
                raise ValueError(f"{where}.{col}: must be a string; got {v!r}")
        return row

    return check


def _request_rows(payload: Any, schema: Schema, max_batch: int) -> tuple[bool, list[dict[str, Any]]]:
    """Whether ``payload`` is a batch, and its rows checked against ``schema``.

    Raises
    ------
    _Refused
        413 for more than ``max_batch`` rows, 422 for anything else that is wrong.
    """
    batch = isinstance(payload, dict) and "rows" in payload and "rows" not in schema.features
    rows = payload["rows"] if batch else [payload]
    if batch and not isinstance(rows, list):
        raise _Refused(422, f"rows: must be a list of rows; got {type(rows).__name__}")
    if len(rows) > max_batch:
        raise _Refused(413, f"rows: {len(rows)} rows is more than the limit of {max_batch} per request")
    if not rows:
        raise _Refused(422, "rows: must hold at least one row")
    check = _validator(schema)
    try:
        return batch, [check(r, f"rows[{i}]" if batch else "body") for i, r in enumerate(rows)]
    except ValueError as exc:
        raise _Refused(422, str(exc)) from None


def _check_feedback(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return f"body: must be an object with prediction_id, label and by; got {type(payload).__name__}"
    for name in ("prediction_id", "label"):
        if name not in payload:
            return f"{name}: is required"
    extra = [k for k in payload if k not in ("prediction_id", "label", "by", "source")]
    if extra:
        return f"{extra[0]}: is not a field of feedback (prediction_id, label, by)"
    if not isinstance(payload["prediction_id"], str):
        return f"prediction_id: must be a string; got {payload['prediction_id']!r}"
    if payload["label"] is None or isinstance(payload["label"], dict | list):
        return f"label: must be a class label or a number; got {payload['label']!r}"
    by = payload.get("by", payload.get("source"))
    if by is not None and not isinstance(by, str):
        return f"by: must be a string; got {by!r}"
    return None


_OUTCOME_FIELDS = ("prediction_id", "name", "value")
_NAME_MAX = 100  # an outcome's name is an event's name (click, refund), not a payload


def _check_outcome(payload: Any) -> tuple[str, str, float] | str:
    """An outcome's prediction id, name and value (true/false as 1.0/0.0), or what is wrong with it."""
    if not isinstance(payload, dict):
        return f"body: must be an object with prediction_id, name and value; got {type(payload).__name__}"
    for field in _OUTCOME_FIELDS:
        if field not in payload:
            return f"{field}: is required"
    extra = [k for k in payload if k not in _OUTCOME_FIELDS]
    if extra:
        return f"{extra[0]}: is not a field of an outcome (prediction_id, name, value)"
    pid, name, value = (payload[f] for f in _OUTCOME_FIELDS)
    if not isinstance(pid, str):
        return f"prediction_id: must be a string; got {pid!r}"
    if not isinstance(name, str) or not name.strip() or len(name) > _NAME_MAX:
        shown = repr(name) if not isinstance(name, str) or len(name) <= 40 else f"{len(name)} characters"
        return f"name: must be a non-blank string of at most {_NAME_MAX} characters (e.g. click); got {shown}"
    if isinstance(value, bool):
        return pid, name, float(value)
    if not isinstance(value, int | float) or not _finite(value):
        return f"value: must be a finite number or true/false; got {value!r}"
    return pid, name, float(value)


def _json_kind(value: Any) -> str:
    """The JSON type of a value, as a client wrote it: ``string``, ``integer``, ``number``, ``boolean``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def _fits(label: Any, kinds: set[str]) -> bool:
    """Whether ``label``'s JSON type is one the classes have (an integer fits where numbers do)."""
    kind = _json_kind(label)
    return kind in kinds or (kind == "integer" and "number" in kinds)


def _label_for(label: Any, schema: Schema, allow_new_classes: bool) -> Any:
    """The label as the target holds it: one of the classes, of their JSON type (``3`` for an
    integer class, never ``"3"``), or a finite number for a regression target.

    Raises
    ------
    _Refused
        422 naming the classes (or the number wanted) and what was given.
    """
    if schema.classes is None:
        if isinstance(label, bool) or not isinstance(label, int | float) or not _finite(label):
            raise _Refused(422, f"label: must be a finite number for a regression target; got {label!r}")
        return float(label)
    classes = schema.classes
    shown = ", ".join(json.dumps(c) for c in classes[:12]) + (", …" if len(classes) > 12 else "")
    kinds = {_json_kind(c) for c in classes}
    if not _fits(label, kinds):
        wanted = " or ".join(sorted(kinds))
        raise _Refused(
            422,
            f"label: must be one of the classes {shown} (JSON {wanted}); "
            f"got {json.dumps(label)} (JSON {_json_kind(label)})",
        )
    for c in classes:
        if c == label and _fits(label, {_json_kind(c)}):
            return c
    if allow_new_classes:
        return label
    raise _Refused(
        422,
        f"label: {json.dumps(label)} is not a known class ({shown}); "
        "start the service with --allow-new-classes to accept it",
    )


def _finite(v: int | float) -> bool:
    """Whether a JSON number is finite as a float (an integer too large for one is not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _predict_openapi(schema: Schema) -> dict[str, Any]:
    """``/predict``'s request body for the OpenAPI document: one row of features, or ``{"rows": [...]}``."""
    feature_schema = {
        "type": "object",
        "properties": {
            c: ({"type": ["number", "null"]} if k == "numeric" else {"type": ["string", "null"]})
            for c, k in schema.features.items()
        },
        "required": list(schema.features),
        "additionalProperties": False,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            feature_schema,
                            {
                                "type": "object",
                                "properties": {"rows": {"type": "array", "items": feature_schema}},
                                "required": ["rows"],
                            },
                        ]
                    }
                }
            },
        }
    }


_LABEL = {"type": ["string", "number", "integer", "boolean"], "description": "A class, or a number"}
_BY = {"type": "string", "description": "Who gave the label"}
_FEEDBACK_BODY = {
    "type": "object",
    "properties": {"prediction_id": {"type": "string"}, "label": _LABEL, "by": _BY},
    "required": ["prediction_id", "label"],
    "additionalProperties": False,
}
_REVIEW_BODY = {
    "type": "object",
    "properties": {"label": _LABEL, "by": _BY},
    "required": ["label"],
    "additionalProperties": False,
}


_OUTCOME_BODY = {
    "type": "object",
    "properties": {
        "prediction_id": {"type": "string", "description": "The id /predict answered with"},
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": _NAME_MAX,
            "description": "The event: click, refund, churned, …",
        },
        "value": {"type": ["number", "boolean"], "description": "A finite number; true/false count as 1/0"},
    },
    "required": list(_OUTCOME_FIELDS),
    "additionalProperties": False,
}


def _body_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON request body for the OpenAPI document (handlers read it themselves, to say what is wrong)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
