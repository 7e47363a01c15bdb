"""The service against its own OpenAPI document: Schemathesis generates requests from
``/openapi.json`` and sends them to a real ``flywheel serve`` (127.0.0.1, port 0); no answer may be a
server error, and every answer must fit the schema documented for its status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from flywheel.pipeline import promote, run
from helpers import write_project
from test_serve import Server, _rows

WINE = """\
project: wine-schema
data: {source: builtin:wine, target: cultivar, split: {test: 0.25, valid: 0.25, seed: 1}}
objective: {optimize: accuracy}
diagnosis: {forecast: false}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 2000}}
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A served model behind a token, with one conflicting label so the review queue has an item."""
    folder = tmp_path_factory.mktemp("schema")
    path = write_project(folder, WINE)
    run(path, report=False)
    promote("logreg", path, force=True)
    token = folder / "token"
    s = Server(path, "--token-file", str(token), "--max-batch", "50")
    auth = {"Authorization": f"Bearer {token.read_text().strip()}"}
    try:
        pid = httpx.post(s.url + "/predict", json=_rows(1)[0]).json()["prediction_id"]
        for label in ("class_0", "class_1"):
            fed = httpx.post(s.url + "/feedback", json={"prediction_id": pid, "label": label}, headers=auth)
            assert fed.status_code == 200, fed.text
        yield s, auth
    finally:
        s.stop()


@pytest.fixture(scope="module")
def api(service: tuple[Server, dict[str, str]]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(service[0].url + "/openapi.json")


# Schemathesis' own pytest integration (``schemathesis.pytest.from_fixture``) does not run on
# pytest 9; its strategies do, one operation at a time.
OPERATIONS = [
    ("POST", "/predict"),
    ("POST", "/feedback"),
    ("POST", "/outcome"),
    ("GET", "/review/next"),
    ("POST", "/review/{item_id}"),
    ("GET", "/health"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_answer_is_documented_and_none_is_a_server_error(
    api: schemathesis.BaseSchema, service: tuple[Server, dict[str, str]], method: str, path: str
) -> None:
    operation = api[path][method]
    # Requests that fit the document, and requests that break it (bad types, missing fields): the
    # second kind must be refused with a documented 4xx, never a 500.
    cases = st.one_of(operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers=service[1], checks=[not_a_server_error, response_schema_conformance], timeout=30
        )

    answers()


def test_the_answers_that_succeed_fit_the_document(
    api: schemathesis.BaseSchema, service: tuple[Server, dict[str, str]]
) -> None:
    """Generated requests rarely name a logged prediction or a queued item; these do."""
    checks = [not_a_server_error, response_schema_conformance]
    auth = service[1]

    def call(path: str, method: str, **kwargs: Any) -> Any:
        case = api[path][method].Case(media_type="application/json", **kwargs)
        response = case.call_and_validate(headers=auth, checks=checks, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    one = call("/predict", "POST", body=_rows(1, 3)[0])
    call("/predict", "POST", body={"rows": _rows(3, 7)})
    fed = call(
        "/feedback", "POST", body={"prediction_id": one["prediction_id"], "label": "class_2", "by": "x"}
    )
    assert fed["replaces"] is None and fed["conflict"] is False
    told = call(
        "/outcome", "POST", body={"prediction_id": one["prediction_id"], "name": "click", "value": True}
    )
    assert told["value"] == 1.0
    item = call("/review/next", "GET")
    assert item["reasons"][0].startswith("conflict") and len(item["conflict"]) == 2
    done = call(
        "/review/{item_id}", "POST", path_parameters={"item_id": item["id"]}, body={"label": "class_1"}
    )
    assert done["status"] == "labelled"
    call("/health", "GET")


def test_the_document_names_every_refusal(api: schemathesis.BaseSchema) -> None:
    paths = api.raw_schema["paths"]
    assert set(paths["/predict"]["post"]["responses"]) >= {"200", "413", "422", "503"}
    assert set(paths["/feedback"]["post"]["responses"]) >= {"200", "401", "404", "413", "422"}
    assert set(paths["/outcome"]["post"]["responses"]) >= {"200", "401", "404", "413", "422"}
    assert "bearer" in str(api.raw_schema["components"]["securitySchemes"]).lower()
