"""The service's documentation: ``/docs`` (Swagger UI) and ``/redoc`` served from this machine, and
the shapes of its answers for the OpenAPI document.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without internet access
(where services often run) they are blank. The same assets come with the ``fastapi-offline``
package; they are mounted under ``/docs-assets`` and the pages point there, favicon included.
Swagger UI's validator badge (an image from validator.swagger.io) and ReDoc's Google fonts are
turned off, so neither page asks anything of another host.

Every answer is documented — the 200 bodies and the one-line ``{"detail": ...}`` of each refusal —
so a client generated from ``/openapi.json`` knows them, and a schema-driven test
(``tests/test_service_schema.py``, Schemathesis) can hold each response to its schema.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

__all__: list[str] = []

_ASSETS = "/docs-assets"

_PROBLEM = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What is wrong, where, and why."}},
    "required": ["detail"],
}
_WHY = {
    401: "No bearer token, or another one (only with --token-file)",
    404: "Nothing there",
    413: "The body is over --max-body-mb, or a batch over --max-batch",
    422: "The body does not fit: the offending field and why",
    500: "The model failed on this request",
    503: "The prediction log or the model process is behind or restarting; retry after Retry-After",
}

_PROBABILITIES = {"type": ["object", "null"], "additionalProperties": {"type": "number"}}
_ONE_PROPERTIES = {"prediction_id": {"type": "string"}, "prediction": {}, "probabilities": _PROBABILITIES}
_ONE = {
    "type": "object",
    "properties": _ONE_PROPERTIES,
    "required": ["prediction_id", "prediction", "probabilities"],
}
_MODEL = {"model": {"type": "string"}, "version": {"type": "integer"}}
_PREDICTED = {
    "oneOf": [
        {
            "type": "object",
            "properties": {**_MODEL, **_ONE_PROPERTIES},
            "required": ["model", "version", "prediction_id", "prediction", "probabilities"],
        },
        {
            "type": "object",
            "properties": {**_MODEL, "predictions": {"type": "array", "items": _ONE}},
            "required": ["model", "version", "predictions"],
        },
    ]
}
_FED_BACK = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "prediction_id": {"type": "string"},
        "label": {"type": ["string", "number", "integer", "boolean"]},
        "replaces": {
            "type": ["string", "null"],
            "description": "The label this prediction had until now (the latest label wins).",
        },
        "conflict": {
            "type": "boolean",
            "description": "Labels given since the last review disagree: the review queue shows it.",
        },
    },
    "required": ["ok", "prediction_id", "label", "replaces", "conflict"],
}
_OUTCOME = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "prediction_id": {"type": "string"},
        "name": {"type": "string"},
        "value": {"type": "number", "description": "As stored: true/false become 1.0/0.0."},
    },
    "required": ["ok", "prediction_id", "name", "value"],
}
_NULLABLE_STRING = {"type": ["string", "null"]}
_ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "prediction_id": _NULLABLE_STRING,
        "input": {"type": "object"},
        "prediction": {},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number"},
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "created_at": {"type": "number"},
        "status": {"type": "string"},
        "label": _NULLABLE_STRING,
        "labelled_by": _NULLABLE_STRING,
        "conflict": {
            "type": ["array", "null"],
            "description": "For a `conflict` item: every label given, oldest first.",
            "items": {"type": "object"},
        },
    },
    "required": ["id", "prediction_id", "input", "reasons", "score", "model", "version", "status"],
}
_HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "project": {"type": "string"},
        "alias": {"type": "string"},
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "ack": {"type": "string", "enum": ["durable", "fast"]},
        "log_queue_depth": {"type": "integer"},
        "worker": {"type": "integer", "description": "The process id of the worker that answered."},
        "workers": {"type": "integer", "description": "How many workers serve (--workers)."},
        "shadow": {
            "type": ["object", "null"],
            "description": "--shadow: the model that runs on every request, logged, never returned.",
            "properties": {"name": {"type": "string"}, **_MODEL},
        },
        "pilot": {
            "type": ["object", "null"],
            "description": "--pilot: the model that answers `share` of the requests (the served model "
            "runs as their shadow, and it runs as the shadow of the others).",
            "properties": {"name": {"type": "string"}, **_MODEL, "share": {"type": "number"}},
        },
    },
    "required": ["status", "model", "version"],
}
_SHAPES = {
    "predict": _PREDICTED,
    "feedback": _FED_BACK,
    "outcome": _OUTCOME,
    "item": _ITEM,
    "health": _HEALTH,
}


def _answers(ok: str, *refusals: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI's ``responses=``: the 200 answer's schema and the problem body of each refusal."""
    documented: dict[int | str, dict[str, Any]] = {
        200: {"content": {"application/json": {"schema": _SHAPES[ok]}}}
    }
    for status in refusals:
        documented[status] = {
            "description": _WHY[status],
            "content": {"application/json": {"schema": _PROBLEM}},
        }
    return documented


def _add_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` from assets served here (none when the assets are not installed)."""
    try:
        import fastapi_offline
    except ImportError:
        print(
            "flywheel serve: /docs and /redoc are off (their assets come with: pip install fastapi-offline)",
            file=sys.stderr,
            flush=True,
        )
        return
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} · API",
            oauth2_redirect_url=f"{root}{redirect}",
            swagger_js_url=f"{root}{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # its badge is an image from another host
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} · API",
            redoc_js_url=f"{root}{_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
