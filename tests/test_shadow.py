"""A second model on the same traffic, and outcomes, on real services (127.0.0.1, port 0): ``--shadow``
logs the challenger's answers under the answered ids and never returns them, ``--pilot`` splits the
requests by the hash rule and pairs every one, ``POST /outcome`` ties events to predictions, and
the log's new tables appear in logs written before them."""

from __future__ import annotations

import functools
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_iris

from flywheel.errors import FlywheelError
from flywheel.pipeline import promote, run
from flywheel.prediction_log import (
    LOG_NAME,
    PredictionLog,
    PredictionRecord,
    ShadowRecord,
    read_outcomes,
    read_predictions,
    read_shadow,
)
from flywheel.project import load_project
from flywheel.registry import log_location, project_store
from flywheel.serving import parse_pilot, piloted
from helpers import FLYWHEEL, IRIS_TWO_MODELS
from helpers import write_project as _write_project
from test_serve import Server, _children


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def iris(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Iris with logreg as champion and tree as challenger; its store (and so its log) a SQLite file
    or a PostgreSQL database."""
    store = "" if request.param == "sqlite" else f"store: {request.getfixturevalue('postgres').database()}\n"
    text = IRIS_TWO_MODELS.format(name="shadow-test") + store
    path = _write_project(tmp_path_factory.mktemp("shadow"), text)
    run(path, report=False)
    promote("logreg", path, force=True)
    _point("challenger", "tree", path)
    return path


def _point(alias: str, model: str, path: Path) -> None:
    project = load_project(path)
    store = project_store(project)
    try:
        entry = store.latest_model(project.project, model)
        assert entry is not None
        store.set_alias(project.project, alias, entry["id"], datetime.now(UTC), forced=True, note="test")
    finally:
        store.close()


def _log(path: Path) -> Any:
    return log_location(load_project(path))


@functools.cache
def _iris_rows() -> list[dict[str, float]]:
    frame = load_iris(as_frame=True).frame.drop(columns=["target"])
    return [{k: float(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    rows = _iris_rows()
    return [rows[(start + i) % len(rows)] for i in range(n)]


def _metric(url: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", httpx.get(url + "/metrics").text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def _shadows_of(path: Path, ids: list[str], timeout: float = 15.0) -> list[dict[str, Any]]:
    """The shadow rows of ``ids`` once all are there (a shadow is logged after its answer)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = read_shadow(_log(path), ids)
        if {r["prediction_id"] for r in rows} == set(ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture(scope="module")
def shadowed(iris: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """The champion served with the challenger as its shadow, behind a token."""
    token = tmp_path_factory.mktemp("token") / "token"
    s = Server(iris, "--shadow", "challenger", "--token-file", str(token))
    try:
        yield s, {"Authorization": f"Bearer {token.read_text().strip()}"}
    finally:
        s.stop()


def test_a_shadow_is_logged_under_the_answered_ids_and_never_returned(
    iris: Path, shadowed: tuple[Server, dict[str, str]]
) -> None:
    s = shadowed[0]
    assert "shadow challenger = tree v1" in s.first_line
    one = httpx.post(s.url + "/predict", json=_rows(1, 60)[0])
    batch = httpx.post(s.url + "/predict", json={"rows": _rows(4, 100)})
    assert one.status_code == batch.status_code == 200
    assert "tree" not in one.text + batch.text  # the shadow's answers are never returned
    ids = [one.json()["prediction_id"], *(p["prediction_id"] for p in batch.json()["predictions"])]
    shadows = _shadows_of(iris, ids)
    assert sorted(r["prediction_id"] for r in shadows) == sorted(ids)
    assert {(r["model"], r["version"]) for r in shadows} == {("tree", 1)}
    assert all(r["latency_ms"] > 0 and abs(sum(r["probabilities"].values()) - 1) < 1e-9 for r in shadows)
    answered = read_predictions(_log(iris), ids=ids)
    assert {(p["model"], p["version"]) for p in answered} == {("logreg", 1)} and len(answered) == 5
    health = httpx.get(s.url + "/health").json()
    assert health["shadow"] == {"name": "challenger", "model": "tree", "version": 1}
    assert health["pilot"] is None
    assert _metric(s.url, "flywheel_shadow_predictions_total") >= 5
    assert _metric(s.url, "flywheel_pilot_requests_total") == 0


def test_outcomes_join_logged_predictions(iris: Path, shadowed: tuple[Server, dict[str, str]]) -> None:
    s, auth = shadowed
    pid = httpx.post(s.url + "/predict", json=_rows(1, 3)[0]).json()["prediction_id"]
    for name, value in (("click", True), ("refund", 12.5), ("click", 0)):
        r = httpx.post(
            s.url + "/outcome", json={"prediction_id": pid, "name": name, "value": value}, headers=auth
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"ok": True, "prediction_id": pid, "name": name, "value": float(value)}
    logged = read_outcomes(_log(iris), [pid])  # durable before the answer came back
    assert [(o["name"], o["value"]) for o in logged] == [("click", 1.0), ("refund", 12.5), ("click", 0.0)]
    assert logged[0]["at"] <= logged[1]["at"] <= logged[2]["at"]
    assert pid in {o["prediction_id"] for o in read_outcomes(_log(iris))}
    unknown = httpx.post(
        s.url + "/outcome", json={"prediction_id": "nope", "name": "click", "value": 1}, headers=auth
    )
    assert (
        unknown.status_code == 404
        and unknown.json()["detail"] == "prediction_id: no logged prediction 'nope'"
    )
    bodies = [
        ({"name": "click", "value": 1}, "prediction_id: is required"),
        ({"prediction_id": pid, "value": 1}, "name: is required"),
        ({"prediction_id": pid, "name": "click"}, "value: is required"),
        ({"prediction_id": pid, "name": "click", "value": 1, "by": "x"}, "by: is not a field of an outcome"),
        ({"prediction_id": pid, "name": "click", "value": "1"}, "value: must be a finite number"),
        ({"prediction_id": pid, "name": "click", "value": None}, "value: must be a finite number"),
        ({"prediction_id": pid, "name": "", "value": 1}, "name: must be a non-blank string"),
        ({"prediction_id": pid, "name": "x" * 101, "value": 1}, "got 101 characters"),
        ({"prediction_id": 7, "name": "click", "value": 1}, "prediction_id: must be a string"),
        (["click"], "body: must be an object"),
    ]
    for body, message in bodies:
        r = httpx.post(s.url + "/outcome", json=body, headers=auth)
        assert r.status_code == 422 and message in r.json()["detail"], (body, r.text)
    for raw in (
        b'{"prediction_id": "x", "name": "n", "value": NaN}',
        b'{"prediction_id": "x", "name": "n", "value": 1e999}',
    ):
        r = httpx.post(s.url + "/outcome", content=raw, headers={**auth, "content-type": "application/json"})
        assert r.status_code == 422 and "value: must be a finite number" in r.json()["detail"], r.text
    bare = httpx.post(s.url + "/outcome", json={"prediction_id": pid, "name": "click", "value": 1})
    assert bare.status_code == 401 and "Authorization" in bare.json()["detail"]
    assert len(read_outcomes(_log(iris), [pid])) == 3  # nothing refused was written
    assert _metric(s.url, "flywheel_outcomes_logged_total") == 3
    body = httpx.get(s.url + "/openapi.json").json()["paths"]["/outcome"]["post"]
    schema = body["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["prediction_id", "name", "value"] and not schema["additionalProperties"]
    assert {"200", "401", "404", "422"} <= set(body["responses"])


def test_a_failing_shadow_never_fails_a_request(iris: Path, shadowed: tuple[Server, dict[str, str]]) -> None:
    """Its model process killed, the shadow fails: requests are answered, the failure is counted and
    said once, and a new shadow process takes over."""
    import os
    import signal

    s = shadowed[0]
    (worker,) = [pid for pid, c in _children(s.proc.pid).items() if "tree-v1" in c.split()]
    os.kill(worker, signal.SIGKILL)
    answered: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = httpx.post(s.url + "/predict", json=_rows(1, len(answered))[0])
        assert r.status_code == 200, r.text
        answered.append(r.json()["prediction_id"])
        if _metric(s.url, "flywheel_shadow_errors_total") >= 1 and read_shadow(_log(iris), answered[-1:]):
            break  # failed once, then shadowed again by a new process
        time.sleep(0.05)
    assert _metric(s.url, "flywheel_shadow_errors_total") >= 1
    assert read_shadow(_log(iris), answered[-1:]), "no new shadow process took over"
    s.errors.seek(0)
    said = [line for line in s.errors.read().splitlines() if "shadow" in line]
    assert len(said) == 1 and "shadow run of tree v1 failed" in said[0], said


def test_the_shadow_stays_when_the_champion_becomes_the_same_model(
    iris: Path, shadowed: tuple[Server, dict[str, str]]
) -> None:
    s = shadowed[0]
    _point("champion", "tree", iris)
    try:
        deadline = time.monotonic() + 20
        answer: dict[str, Any] = {}
        while time.monotonic() < deadline and answer.get("model") != "tree":
            answer = httpx.post(s.url + "/predict", json=_rows(1, 7)[0]).json()
            time.sleep(0.05)
        assert answer["model"] == "tree"  # promoted; the shadow is still the challenger: both are logged
        (shadow,) = _shadows_of(iris, [answer["prediction_id"]])
        assert (shadow["model"], shadow["version"]) == ("tree", 1)
        assert httpx.get(s.url + "/health").json()["shadow"]["model"] == "tree"
    finally:
        promote("logreg", iris, force=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and httpx.get(s.url + "/health").json()["model"] != "logreg":
            time.sleep(0.05)


@pytest.mark.parametrize("where", ["--model-process", "--model-on-loop"])
def test_a_pilot_answers_its_share_and_every_request_is_paired(iris: Path, where: str) -> None:
    s = Server(iris, "--pilot", "challenger:0.5", where)
    try:
        assert httpx.get(s.url + "/health").json()["pilot"] == {
            "name": "challenger",
            "model": "tree",
            "version": 1,
            "share": 0.5,
        }
        answers = []
        with httpx.Client(timeout=10) as client:
            for i in range(200):
                r = client.post(s.url + "/predict", json=_rows(1, i)[0])
                assert r.status_code == 200, r.text
                answers.append((r.json()["prediction_id"], r.json()["model"]))
        by_tree = sum(model == "tree" for _, model in answers)
        assert _metric(s.url, "flywheel_pilot_requests_total") == by_tree
    finally:
        s.stop()  # the shadow runs still in flight are logged before it exits
    # Binomial(200, 0.5): 100 ± 7; this bound fails once in millions of runs.
    assert 60 <= by_tree <= 140
    for pid, model in answers:  # the hash rule, exactly
        assert model == ("tree" if piloted(pid, 0.5) else "logreg")
    ids = [pid for pid, _ in answers]
    logged = {p["id"]: p["model"] for p in read_predictions(_log(iris), ids=ids)}
    assert logged == dict(answers)
    shadows = read_shadow(_log(iris), ids)
    assert len(shadows) == len(ids)  # every request paired, once
    other = {"tree": "logreg", "logreg": "tree"}
    assert {r["prediction_id"]: r["model"] for r in shadows} == {pid: other[m] for pid, m in answers}


def test_a_second_model_that_cannot_be_is_one_line_and_exit_2(iris: Path) -> None:
    cases = {
        ("--shadow", "nope"): "--shadow nope: no alias or saved model of that name in shadow-test; "
        "aliases: challenger, champion; models: logreg, tree",
        ("--pilot", "champion:0.5"): "--pilot champion: is the served model itself (champion = logreg v1)",
        ("--shadow", "tree", "--pilot", "tree:0.1"): "--shadow tree and --pilot tree:0.1: give one",
    }
    started = {  # side by side: each spends most of its time importing
        args: subprocess.Popen(
            [str(FLYWHEEL), "serve", str(iris), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in cases
    }
    for args, proc in started.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and out == "", (args, out, err)
        assert err.count("\n") == 1 and cases[args] in err, (args, err)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("challenger", "--pilot must be NAME:SHARE (e.g. challenger:0.1); got 'challenger'"),
        ("challenger:ten", "--pilot must be NAME:SHARE (e.g. challenger:0.1); got 'challenger:ten'"),
        (":0.5", "--pilot must be NAME:SHARE"),
        ("challenger:nan", "--pilot must be NAME:SHARE"),
        (
            "challenger:0",
            "--pilot challenger:0: SHARE must be a fraction of the requests, 0 < SHARE <= 1; got 0",
        ),
        ("challenger:1.5", "0 < SHARE <= 1; got 1.5"),
        ("challenger:-0.1", "0 < SHARE <= 1; got -0.1"),
    ],
)
def test_a_malformed_pilot_says_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(FlywheelError) as caught:
        parse_pilot(text)
    assert message in str(caught.value)


def test_pilot_shares_follow_the_hash_rule() -> None:
    assert parse_pilot("challenger:0.1") == ("challenger", 0.1) and parse_pilot("a:b:1") == ("a:b", 1.0)
    ids = [f"{i:032x}" for i in range(4000)]
    assert all(piloted(i, 1.0) for i in ids)
    for share in (0.1, 0.5):
        chosen = sum(piloted(i, share) for i in ids)
        assert abs(chosen - share * 4000) < 6 * (4000 * share * (1 - share)) ** 0.5
        assert {i for i in ids if piloted(i, share)} <= {i for i in ids if piloted(i, share + 0.2)}


def test_an_old_log_reads_and_takes_the_new_records(tmp_path: Path) -> None:
    """A log written before the shadow and outcomes tables existed gains them when opened."""
    assert read_shadow(tmp_path / "none.db") == [] and read_outcomes(tmp_path / "none.db") == []
    old = tmp_path / LOG_NAME
    conn = sqlite3.connect(old)
    conn.executescript(
        """
        CREATE TABLE predictions (id TEXT PRIMARY KEY, at REAL NOT NULL, model TEXT NOT NULL,
            version INTEGER NOT NULL, input TEXT NOT NULL, prediction TEXT NOT NULL,
            probabilities TEXT, latency_ms REAL NOT NULL);
        CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, prediction_id TEXT NOT NULL,
            label TEXT NOT NULL, source TEXT NOT NULL, at REAL NOT NULL,
            origin TEXT NOT NULL DEFAULT 'traffic');
        INSERT INTO predictions VALUES ('a', 1.0, 'logreg', 1, '{"x": 1}', '"setosa"', NULL, 2.0);
        """
    )
    conn.close()
    assert read_shadow(old) == [] and read_outcomes(old, ["a"]) == []
    assert [p["id"] for p in read_predictions(old)] == ["a"]
    log = PredictionLog(old)
    try:
        log.submit(
            [
                PredictionRecord("b", 2.0, "logreg", 1, {"x": 2}, "versicolor", None, 1.0),
                ShadowRecord("b", "tree", 1, "virginica", {"virginica": 1.0}, 0.5),
                ShadowRecord("a", "tree", 1, "setosa", None, 0.4),
            ]
        )
        log.submit(ShadowRecord("b", "tree", 1, "virginica", None, 0.6))  # the same key: kept once
        log.add_outcome("a", "refund", 3)
        log.add_outcome("b", "click", True)
    finally:
        log.close()
    assert log.logged == 1 and log.dropped == 0
    assert [(r["prediction_id"], r["prediction"]) for r in read_shadow(old)] == [
        ("b", "virginica"),
        ("a", "setosa"),
    ]
    assert read_shadow(old, ["a"]) == [
        {
            "prediction_id": "a",
            "model": "tree",
            "version": 1,
            "prediction": "setosa",
            "probabilities": None,
            "latency_ms": 0.4,
        }
    ]
    assert [(o["prediction_id"], o["name"], o["value"]) for o in read_outcomes(old)] == [
        ("a", "refund", 3.0),
        ("b", "click", 1.0),
    ]
    assert read_outcomes(old, ["b"])[0]["name"] == "click"


def test_retention_takes_the_shadow_answers_with_their_predictions(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / LOG_NAME, retention_rows=50)
    try:
        for start in range(0, 300, 100):
            log.submit(
                [
                    record
                    for i in range(start, start + 100)
                    for record in (
                        PredictionRecord(f"p{i:04d}", float(i), "logreg", 1, {"x": i}, "a", None, 1.0),
                        ShadowRecord(f"p{i:04d}", "tree", 1, "b", None, 0.5),
                    )
                ]
            )
    finally:
        log.close()  # the writer applies retention as it exits
    kept = [p["id"] for p in read_predictions(tmp_path / LOG_NAME)]
    assert kept == [f"p{i:04d}" for i in range(250, 300)]
    assert [r["prediction_id"] for r in read_shadow(tmp_path / LOG_NAME)] == kept
