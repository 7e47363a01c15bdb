"""`flywheel monitor` against a replayed production, and promotion on traffic evidence.

The demo's champion is served for real (uvicorn on 127.0.0.1); production is the demo's own data
with a shift injected into two features, and labels that come back degraded for a share of the
traffic. The monitor must name the two features, measure the live drop with its interval, say
`act`, propose the loop-back to data, and `flywheel mine` must queue `drift`-coded items. A shadow
model that is truly better on the labelled traffic is promoted on that evidence; an equal one is not.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits

from flywheel.prediction_log import LOG_NAME, read_shadow
from helpers import FLYWHEEL
from test_consistency import _numbers, _report_text, _unsourced
from test_serve import Server

SHIFTED = ("pixel_2_4", "pixel_5_3")


def _fly(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FLYWHEEL), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, made once; each test works on its own copy."""
    where = tmp_path_factory.mktemp("demo")
    shown = _fly(where, "demo")
    assert shown.returncode in (0, 1, 3), shown.stderr
    return where / "flywheel-demo"


def _copy(demo: Path, tmp_path: Path) -> Path:
    project = tmp_path / "flywheel-demo"
    shutil.copytree(demo, project)
    return project


def _traffic(
    n: int, seed: int, shift: float, noise: float = 0.0
) -> tuple[list[dict[str, float]], np.ndarray]:
    """``n`` rows of the demo's data (its column names), two features shifted by ``shift``, every
    pixel blurred by Gaussian ``noise`` (clipped to the pixels' 0–16)."""
    digits = load_digits()
    names = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(digits.data), n, replace=True)
    x = digits.data[pick].copy()
    if noise:
        x = np.clip(x + rng.normal(0, noise, x.shape), 0, 16).round()
    for name in SHIFTED:
        col = names.index(name)
        x[:, col] = np.clip(x[:, col] + shift, 0, 16)
    return [dict(zip(names, map(float, row), strict=True)) for row in x], digits.target[pick]


def _predict(url: str, rows: list[dict[str, float]]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for start in range(0, len(rows), 100):
        reply = httpx.post(url + "/predict", json={"rows": rows[start : start + 100]}, timeout=60)
        assert reply.status_code == 200, reply.text
        answers += reply.json()["predictions"]
    return answers


def _label(url: str, pairs: list[tuple[str, Any]]) -> None:
    for pid, label in pairs:
        reply = httpx.post(
            url + "/feedback", json={"prediction_id": pid, "label": label, "by": "ops"}, timeout=30
        )
        assert reply.status_code == 200, reply.text


def test_replayed_production_finds_the_drift_the_drop_and_proposes_data(demo: Path, tmp_path: Path) -> None:
    project = _copy(demo, tmp_path)
    rows, truth = _traffic(1200, seed=1, shift=6.0)
    server = Server(project)
    try:
        answers = _predict(server.url, rows)
        rng = np.random.default_rng(2)
        labelled = rng.choice(len(rows), 400, replace=False)
        degraded = set(labelled[:100].tolist())  # a quarter of the labels say the model was wrong
        pairs = []
        for i in labelled.tolist():
            label = int(truth[i])
            if i in degraded:
                label = (int(answers[i]["prediction"]) + 1) % 10
            pairs.append((answers[i]["prediction_id"], label))
        _label(server.url, pairs)
        # An outcome that follows correctness: a parcel sorted right is rarely re-routed.
        for pid, label in pairs[:200]:
            right = next(a for a in answers if a["prediction_id"] == pid)["prediction"] == label
            reply = httpx.post(
                server.url + "/outcome", json={"prediction_id": pid, "name": "rerouted", "value": not right}
            )
            assert reply.status_code == 200, reply.text
        assert (
            httpx.post(
                server.url + "/outcome", json={"prediction_id": "nope", "name": "x", "value": 1}
            ).status_code
            == 404
        )
    finally:
        server.stop()

    shown = _fly(tmp_path, "monitor", "flywheel-demo", "--json")
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)
    window = result["windows"][-1]
    drift = window["input_drift"]
    assert set(drift["drifted"]) == set(SHIFTED), drift["drifted"]
    assert [f["feature"] for f in drift["features"][:2]] == sorted(
        SHIFTED, key=lambda f: -next(x["psi"] for x in drift["features"] if x["feature"] == f)
    )
    assert drift["domain"]["low"] > 0.6
    live = window["live_quality"]
    assert live["status"] == "act" and live["rows"] == 400
    assert live["low"] <= live["value"] <= live["high"] and live["high"] < result["test"]["value"]
    assert live["drop_low"] > result["margin"]
    assert window["verdict"] == result["verdict"] == "act"
    assert [p["id"] for p in result["proposals"]][:2] == ["data-drift", "data-quality"]
    rerouted = next(o for o in result["outcomes"] if o["name"] == "rerouted")
    assert rerouted["status"] == "moves" and rerouted["difference"] < 0

    text = _fly(tmp_path, "monitor", "flywheel-demo", "--check")
    assert text.returncode == 1, text.stdout + text.stderr
    assert "0 new log rows read" in text.stdout  # the second run reads only what is new
    for name in SHIFTED:
        assert name in text.stdout
    assert "flywheel phase back --accept data-drift flywheel-demo" in text.stdout
    stored = json.loads((project / ".flywheel" / "monitor" / "latest.json").read_text())
    pool = _numbers(stored, [])
    assert not _unsourced(text.stdout, pool), "printed numbers the result lacks"
    page = _report_text(project / ".flywheel" / "reports" / "monitor.html")
    assert not _unsourced(page, pool), "numbers in the monitor's page that the result lacks"

    phase = _fly(tmp_path, "phase", "show", "flywheel-demo", "--json")
    assert phase.returncode == 0, phase.stderr
    assert "data-drift" in [p["id"] for p in json.loads(phase.stdout)["proposals"]]

    mined = _fly(tmp_path, "mine", "flywheel-demo", "--budget", "40")
    assert mined.returncode == 0, mined.stderr
    queue = json.loads(_fly(tmp_path, "queue", "list", "flywheel-demo", "--json").stdout)
    drifted = [item for item in queue if any(r.startswith("drift (") for r in item["reasons"])]
    assert drifted, queue[:3]

    from flywheel.project import load_project
    from flywheel.registry import flywheel_summary

    brief = flywheel_summary(load_project(project))  # what the next run's report shows of it
    assert brief is not None and brief["monitor"]["verdict"] == "act"
    assert [p["id"] for p in brief["monitor"]["proposals"]] == [p["id"] for p in result["proposals"]]

    server = Server(project)  # the service publishes the last monitor result as gauges
    try:
        metrics = httpx.get(server.url + "/metrics").text
    finally:
        server.stop()
    assert "flywheel_monitor_verdict 2" in metrics
    assert f'flywheel_monitor_drifted_features{{window="{window["window"]}"}} 2' in metrics
    assert "flywheel_monitor_domain_auc" in metrics and "flywheel_monitor_live_metric" in metrics

    accepted = _fly(tmp_path, "phase", "back", "--accept", "data-drift", "flywheel-demo")
    assert accepted.returncode == 0, accepted.stderr
    phase = json.loads(_fly(tmp_path, "phase", "show", "flywheel-demo", "--json").stdout)
    assert phase["phase"] == "data"


def test_a_shadow_that_is_truly_better_on_traffic_is_promoted_an_equal_one_is_not(
    demo: Path, tmp_path: Path
) -> None:
    project = _copy(demo, tmp_path)
    config = project / "flywheel.yaml"
    # Superiority: a challenger must be better, not merely as good, to take the champion's place.
    config.write_text(
        config.read_text().replace(
            "policy: non-inferiority, margin: 0.01", "policy: superiority, margin: 0.0"
        )
    )
    rows, _ = _traffic(800, seed=3, shift=0.0, noise=5.0)
    server = Server(project, "--shadow", "knn")
    try:
        answers = _predict(server.url, rows)
        ids = [a["prediction_id"] for a in answers]
        deadline = time.monotonic() + 30
        shadow: dict[str, Any] = {}
        while len(shadow) < len(ids) and time.monotonic() < deadline:
            shadow = {
                s["prediction_id"]: s["prediction"]
                for s in read_shadow(project / ".flywheel" / LOG_NAME, ids=ids)
            }
            time.sleep(0.2)
        assert len(shadow) == len(ids)
        champion = {a["prediction_id"]: a["prediction"] for a in answers}
        differ = [pid for pid in ids if champion[pid] != shadow[pid]]
        assert len(differ) >= 20, len(differ)  # noisy parcels: the two models disagree
        same = [pid for pid in ids if champion[pid] == shadow[pid]][:300]
        # Equal on traffic: where they disagree, each is right half the time.
        even = differ[: len(differ) // 2 * 2]
        _label(server.url, [(pid, champion[pid]) for pid in same])
        _label(server.url, [(pid, (champion if i % 2 else shadow)[pid]) for i, pid in enumerate(even)])
        equal = _fly(tmp_path, "promote", "knn", "flywheel-demo", "--on", "traffic")
        assert equal.returncode == 3, equal.stdout + equal.stderr
        assert "refused" in equal.stderr
        models = json.loads(_fly(tmp_path, "models", "flywheel-demo", "--json").stdout)
        assert [m["name"] for m in models if "champion" in m["aliases"]] == ["rbf-svm"]

        shown = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json").stdout)
        pair = next(p for p in shown["paired"] if p["model"] == "knn")
        assert pair["rows"] == len(same) + len(even) and pair["gate"]["status"] == "inconclusive"

        # The labels that come back later say the shadow was right wherever they disagreed.
        _label(server.url, [(pid, shadow[pid]) for pid in even])
        better = _fly(tmp_path, "promote", "knn", "flywheel-demo", "--on", "traffic")
        assert better.returncode == 0, better.stdout + better.stderr
        assert "champion is now knn v1" in better.stdout
        health = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the service follows the champion alias
            health = httpx.get(server.url + "/health").json()
            if health["model"] == "knn":
                break
            time.sleep(0.2)
        assert health["model"] == "knn"
    finally:
        server.stop()


def test_monitor_refuses_a_project_without_a_log_and_says_when_rows_are_too_few(
    demo: Path, tmp_path: Path
) -> None:
    project = _copy(demo, tmp_path)
    none = _fly(tmp_path, "monitor", "flywheel-demo")
    assert none.returncode == 2
    assert (
        none.stderr.count("\n") == 1
        and "no prediction log" in none.stderr
        and "flywheel serve" in none.stderr
    )
    for bad in (["--since", "yesterday"], ["--since", "0d"], ["--window", "month"]):
        shown = _fly(tmp_path, "monitor", "flywheel-demo", *bad)
        assert shown.returncode == 2 and shown.stderr.count("\n") == 1, (bad, shown.stderr)
    rows, _ = _traffic(20, seed=4, shift=0.0)
    server = Server(project)
    try:
        _predict(server.url, rows)
    finally:
        server.stop()
    few = _fly(tmp_path, "monitor", "flywheel-demo", "--check", "--json")
    assert few.returncode == 3, few.stderr
    result = json.loads(few.stdout)
    assert result["verdict"] == "undecided"
    drift = result["windows"][0]["input_drift"]
    assert drift["status"] == "too few rows" and drift["rows"] == 20 and drift["needed"] == 100
    assert "20 predictions; at least 100 needed" in drift["evidence"][0]

    state = project / ".flywheel" / "monitor" / "state.json"
    state.write_text("{not json")  # damaged totals are counted again from the log
    again = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json").stdout)
    assert again["log"]["rows_read"] == 20 and again["windows"][0]["predictions"] == 20

    log = project / ".flywheel" / LOG_NAME
    for extra in ("-wal", "-shm"):
        log.with_name(log.name + extra).unlink(missing_ok=True)
    log.write_bytes(b"not a database")
    for cmd in (["monitor", "flywheel-demo"], ["promote", "knn", "flywheel-demo", "--on", "traffic"]):
        shown = _fly(tmp_path, *cmd)
        assert shown.returncode == 2 and shown.stderr.count("\n") == 1, shown.stderr
        assert "is not a readable prediction log" in shown.stderr
    assert log.read_bytes() == b"not a database"


def _log_rows(project: Path, rows: list[dict[str, float]], at: float) -> None:
    """Write predictions straight into the log (as the writer would), one second apart from ``at``."""
    import uuid

    from flywheel.prediction_log import PredictionRecord, connect

    conn = connect(project / ".flywheel" / LOG_NAME)
    try:
        conn.executemany(
            "INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?)",
            [
                PredictionRecord(uuid.uuid4().hex, at + i, "rbf-svm", 1, row, 0, None, 2.0).row()
                for i, row in enumerate(rows)
            ],
        )
    finally:
        conn.close()


def test_reading_the_log_incrementally_gives_what_reading_it_whole_gives(demo: Path, tmp_path: Path) -> None:
    project = _copy(demo, tmp_path)
    day = 86_400.0
    start = (time.time() // day - 2) * day  # three UTC days: two before today, then today
    first, _ = _traffic(700, seed=5, shift=0.0)
    second, _ = _traffic(900, seed=6, shift=5.0)
    _log_rows(project, first[:400], start)
    _log_rows(project, first[400:], start + day)
    once = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json").stdout)
    assert once["log"]["rows_read"] == 700
    _log_rows(project, second, start + 2 * day)
    again = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json").stdout)
    assert again["log"]["rows_read"] == 900 and again["log"]["rows_counted"] == 1600
    shutil.rmtree(project / ".flywheel" / "monitor")
    whole = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json").stdout)
    assert whole["log"]["rows_read"] == 1600
    for key in ("at", "log", "seconds"):
        again.pop(key), whole.pop(key)
    assert again == whole
    assert [w["window"] for w in whole["windows"]] == [
        time.strftime("%Y-%m-%d", time.gmtime(start + d * day)) for d in range(3)
    ]
    assert [w["input_drift"]["status"] for w in whole["windows"]][:2] == ["ok", "ok"]
    assert whole["windows"][2]["input_drift"]["status"] == "act"
    weekly = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json", "--window", "week").stdout)
    assert sum(w["predictions"] for w in weekly["windows"]) == 1600


def _served_project(tmp_path: Path, text: str, frame: Any = None) -> Any:
    """A project that ran and whose first model is the champion (forced: the gate is not the point)."""
    from flywheel.project import load_project
    from helpers import write_project

    folder = tmp_path / "p"
    write_project(folder, text)
    if frame is not None:
        frame.to_csv(folder / "data.csv", index=False)
    for cmd in (["run", "."], ["promote", "m", ".", "--force"]):
        done = _fly(folder, *cmd)
        assert done.returncode in (0, 1, 3), done.stderr
    return load_project(folder)


def _write_log(project: Any, rows: list[dict[str, Any]], predictions: list[Any], labels: list[Any]) -> None:
    import uuid

    from flywheel.prediction_log import PredictionRecord, connect
    from flywheel.registry import log_location

    conn = connect(log_location(project))  # the store's database when it is PostgreSQL
    now = time.time()
    ids = [uuid.uuid4().hex for _ in rows]
    try:
        conn.executemany(
            "INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?)",
            [
                PredictionRecord(pid, now - 60 + i / 100, "m", 1, row, pred, None, 1.0).row()
                for i, (pid, row, pred) in enumerate(zip(ids, rows, predictions, strict=True))
            ],
        )
        conn.executemany(
            "INSERT INTO feedback (prediction_id, label, source, at, origin) VALUES (?,?,?,?,?)",
            [
                (pid, str(label), "t", now, "traffic")
                for pid, label in zip(ids, labels, strict=True)
                if label is not None
            ],
        )
    finally:
        conn.close()


def test_categories_and_text_drift_and_a_new_category_is_the_drifted_region(tmp_path: Path) -> None:
    from flywheel.monitoring import monitor
    from helpers import tabular_frame

    frame = tabular_frame(600, seed=1)
    project = _served_project(
        tmp_path,
        """\
        project: mixed
        data: {source: data.csv, target: label, id: id, split: {test: 0.25, valid: 0.2, seed: 0}}
        objective: {optimize: accuracy, constraints: {precision: {min: 0.9}}}
        diagnosis: {forecast: false}
        models:
          - {name: m, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 500}}
        """,
        frame,
    )
    logged = tabular_frame(800, seed=2)
    truth = logged.pop("label").tolist()
    logged = logged.drop(columns=["id"])
    logged.loc[:399, "colour"] = "teal"  # a category training never saw
    logged.loc[:399, "review"] = "arrived late and broken again"
    rows = logged.to_dict(orient="records")
    _write_log(project, rows, ["yes"] * len(rows), [t if i % 4 == 0 else None for i, t in enumerate(truth)])
    result = monitor(project)
    drift = result["windows"][-1]["input_drift"]
    status = {f["feature"]: (f["status"], f["test"]) for f in drift["features"]}
    assert status["colour"] == ("act", "chi-square") and status["review"] == ("act", "chi-square")
    assert status["x1"][0] == "ok" and status["x2"][0] == "ok"
    assert {"feature": "colour", "kind": "categorical", "values": ["teal"]} in result["drift_region"]
    live = result["windows"][-1]["live_quality"]  # a model that always says yes, on 200 labels
    assert live["rows"] == 200 and live["status"] == "act"
    precision = live["constraints"][0]
    assert precision["constraint"] == "precision" and precision["status"] == "broken"
    assert precision["high"] < 0.9 and abs(precision["value"] - live["value"]) < 1e-12  # both: P(yes)
    estimated = result["windows"][-1]["estimated_quality"]
    assert estimated["status"] == "not measured" and "no class probabilities" in estimated["evidence"][0]


def test_a_regression_champion_is_watched_by_its_error_and_not_estimated_without_labels(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On both back-ends: a PostgreSQL store keeps the log (read incrementally by its ``seq``) too."""
    from sklearn.datasets import load_diabetes

    from flywheel.monitoring import monitor

    monkeypatch.setenv("FLYWHEEL_STORE", store_url)
    project = _served_project(
        tmp_path,
        """\
        project: progression
        data: {source: builtin:diabetes, target: progression, split: {test: 0.2, valid: 0.2, seed: 3}}
        objective: {optimize: mae, target: 60}
        diagnosis: {forecast: false}
        models:
          - {name: m, estimator: sklearn.linear_model.Ridge, params: {alpha: 0.1}}
        """,
    )
    data = load_diabetes(as_frame=True)
    names = {c: c for c in data.frame.columns}
    rows = [
        {names[k]: float(v) for k, v in r.items()} for r in data.data.iloc[:300].to_dict(orient="records")
    ]
    truth = data.target.iloc[:300].to_numpy()
    _write_log(project, rows[:100], (truth[:100] + 80).tolist(), truth[:100].tolist())
    assert monitor(project)["log"]["rows_read"] == 100
    _write_log(
        project, rows[100:], (truth[100:] + 80).tolist(), truth[100:].tolist()
    )  # every answer 80 too high
    result = monitor(project)
    assert result["log"]["rows_read"] == 200 and result["log"]["rows_counted"] == 300  # the new rows, once
    window = result["windows"][-1]
    live = window["live_quality"]
    assert live["status"] == "act" and abs(live["value"] - 80) < 1e-9 and live["drop_low"] > 0
    assert "short of the objective's target 60 with 95 % confidence" in live["evidence"]
    assert window["estimated_quality"]["status"] == "not measured"
    assert window["prediction_drift"]["status"] in ("watch", "act")  # answers shifted by 80


def test_a_log_emptied_by_retention_and_refilled_is_counted_once(demo: Path, tmp_path: Path) -> None:
    """Retention deletes the oldest rows and SQLite then reuses their row numbers: the totals of the
    days the log no longer holds stand, and the new rows are counted once, not skipped."""
    import sqlite3

    project = _copy(demo, tmp_path)
    day = 86_400.0
    old_day = (time.time() // day - 3) * day
    before, _ = _traffic(400, seed=7, shift=0.0)
    _log_rows(project, before, old_day)
    first = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json").stdout)
    assert first["log"]["rows_counted"] == 400
    conn = sqlite3.connect(project / ".flywheel" / LOG_NAME)
    conn.execute("DELETE FROM predictions")  # as retention does, all of it
    conn.commit()
    conn.close()
    after, _ = _traffic(300, seed=8, shift=0.0)
    _log_rows(project, after, time.time() - 400)
    again = json.loads(_fly(tmp_path, "monitor", "flywheel-demo", "--json").stdout)
    assert again["log"]["rows_read"] == 300 and again["log"]["rows_counted"] == 700
    counted = {w["window"]: w["predictions"] for w in again["windows"]}
    assert counted[time.strftime("%Y-%m-%d", time.gmtime(old_day))] == 400
    assert counted[time.strftime("%Y-%m-%d", time.gmtime(time.time() - 400))] == 300
    assert sum(counted.values()) == 700  # the quiet days between are shown, with no rows
