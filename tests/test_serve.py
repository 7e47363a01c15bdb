"""The prediction service on a real uvicorn server (127.0.0.1, port 0): logging, feedback, bad input,
SIGKILL under load, reload on promotion, and the whole loop on the built-in digits."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_digits, load_wine

from flywheel.data import load_dataset, split_dataset
from flywheel.pipeline import promote, run
from flywheel.prediction_log import LOG_NAME, read_feedback, read_predictions
from flywheel.project import load_project
from flywheel.registry import open_store
from helpers import FLYWHEEL, LoadsOnlyHere, slice_ns, write_project

WINE = """\
project: wine-serve
data: {source: builtin:wine, target: cultivar, split: {test: 0.25, valid: 0.25, seed: 1}}
objective: {optimize: accuracy}
diagnosis: {forecast: false}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 2000}}
  - {name: forest, estimator: sklearn.ensemble.RandomForestClassifier,
     params: {n_estimators: 30, random_state: 0}}
"""


class Server:
    """``flywheel serve`` in a subprocess; the port comes from the line it prints once bound."""

    def __init__(self, project: Path, *args: str) -> None:
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - open for the server's lifetime
        self.proc = subprocess.Popen(
            [str(FLYWHEEL), "serve", str(project), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not found:
            self.kill()
            self.errors.seek(0)
            raise AssertionError(f"no address in {line!r}; it said: {self.errors.read()[-2000:]}")
        self.url = f"http://127.0.0.1:{found.group(1)}"
        self.first_line = line  # what the service says once it listens
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.kill()
        raise AssertionError("the server did not become healthy")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wine")
    path = write_project(folder, WINE)
    run(path, report=False)
    promote("logreg", path, force=True)
    return path


@pytest.fixture
def server(wine: Path) -> Iterator[Server]:
    s = Server(wine, "--max-batch", "20")
    yield s
    s.stop()


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    frame = load_wine(as_frame=True).frame.drop(columns=["target"])
    return [
        {k: float(v) for k, v in r.items()} for r in frame.iloc[start : start + n].to_dict(orient="records")
    ]


class AckedLoad:
    """``clients`` threads posting 4-row batches to ``url`` until stopped, keeping the prediction ids
    the service acknowledged (200). A client whose request fails stops (the service is gone), or
    with ``retry`` tries again (a killed worker's connection: the next one goes to a live one)."""

    def __init__(self, url: str, clients: int, *, retry: bool = False, **headers: str) -> None:
        self.url, self.retry, self.headers = url, retry, headers
        self.acked: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(k,)) for k in range(clients)]

    def _client(self, k: int) -> None:
        with httpx.Client(timeout=5) as c:
            rows = _rows(4, k * 4)
            while not self._stop.is_set():
                try:
                    r = c.post(self.url + "/predict", json={"rows": rows}, headers=self.headers)
                except httpx.HTTPError:
                    if not self.retry:
                        return
                    time.sleep(0.01)
                    continue
                if r.status_code == 200:
                    with self._lock:
                        self.acked.extend(p["prediction_id"] for p in r.json()["predictions"])

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def wait_for(self, n: int, timeout: float) -> None:
        """Until ``n`` predictions are acknowledged, or ``timeout`` seconds (the caller asserts)."""
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.ident is not None:
                t.join(10)


def test_predictions_are_logged_and_feedback_joins_them(server: Server, wine: Path) -> None:
    one = httpx.post(server.url + "/predict", json=_rows(1)[0]).json()
    assert one["model"] == "logreg" and one["version"] == 1 and one["prediction"].startswith("class_")
    assert abs(sum(one["probabilities"].values()) - 1) < 1e-9
    batch = httpx.post(server.url + "/predict", json={"rows": _rows(5, 10)}).json()
    ids = [p["prediction_id"] for p in batch["predictions"]]
    assert len(set(ids)) == 5
    logged = {
        p["id"]: p
        for p in read_predictions(wine.parent / ".flywheel" / LOG_NAME, ids=[one["prediction_id"], *ids])
    }
    assert set(logged) == {one["prediction_id"], *ids}  # durable before the answer came back
    assert logged[one["prediction_id"]]["input"] == _rows(1)[0] and logged[ids[0]]["version"] == 1
    ok = httpx.post(server.url + "/feedback", json={"prediction_id": ids[0], "label": "class_0", "by": "ann"})
    assert ok.status_code == 200, ok.text
    assert any(
        f["prediction_id"] == ids[0] and f["source"] == "ann"
        for f in read_feedback(wine.parent / ".flywheel" / LOG_NAME)
    )
    health = httpx.get(server.url + "/health").json()
    assert health["model"] == "logreg" and health["ack"] == "durable"
    text = httpx.get(server.url + "/metrics").text
    assert "flywheel_predictions_dropped_total 0" in text
    assert re.search(r"flywheel_predictions_logged_total [1-9]", text)
    assert 'flywheel_predict_latency_seconds_bucket{le="+Inf"}' in text
    assert "/predict" in httpx.get(server.url + "/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("endpoint", "body", "status", "message"),
    [
        ("/predict", b"{not json", 422, "not valid JSON"),
        ("/predict", {"alcohol": 13.0}, 422, "is required"),
        ("/predict", {**_rows(1)[0], "colour": 3}, 422, "body.colour: is not a feature"),
        ("/predict", {**_rows(1)[0], "alcohol": "strong"}, 422, "body.alcohol: must be a finite number"),
        ("/predict", {"rows": "all"}, 422, "rows: must be a list"),
        ("/predict", {"rows": []}, 422, "at least one row"),
        ("/predict", {"rows": _rows(21)}, 413, "more than the limit of 20"),
        ("/predict", {"rows": [_rows(1)[0], {"alcohol": None}]}, 422, "rows[1]."),
        ("/feedback", {"prediction_id": "nope", "label": "class_0"}, 404, "no logged prediction"),
        ("/feedback", {"label": "class_0"}, 422, "prediction_id: is required"),
        ("/feedback", {"prediction_id": 3, "label": "class_0"}, 422, "must be a string"),
        ("/feedback", {"prediction_id": "x", "label": "class_0", "when": 1}, 422, "when: is not a field"),
        ("/review/zzz", {"label": "class_0"}, 404, "no review item"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    server: Server, endpoint: str, body: Any, status: int, message: str
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(server.url + endpoint, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_a_label_outside_the_classes_is_refused(server: Server) -> None:
    pid = httpx.post(server.url + "/predict", json=_rows(1)[0]).json()["prediction_id"]
    r = httpx.post(server.url + "/feedback", json={"prediction_id": pid, "label": "class_7"})
    assert r.status_code == 422 and "not a known class" in r.json()["detail"]


@pytest.mark.parametrize("ack", ["durable", "fast"])
def test_no_acknowledged_prediction_is_lost_to_sigkill(wine: Path, ack: str) -> None:
    s = Server(wine, "--ack", ack)
    load = AckedLoad(s.url, 8)
    load.start()
    load.wait_for(400, timeout=30)
    s.kill()  # SIGKILL under load
    load.stop()
    acked = load.acked
    assert len(acked) >= 400
    # Durable: committed before the answer. Fast: in the writer's pipe before the answer, and the
    # writer outlives the killed service to write it (so give it a moment).
    deadline = time.monotonic() + (0 if ack == "durable" else 20)
    while True:
        logged = {p["id"] for p in read_predictions(wine.parent / ".flywheel" / LOG_NAME, ids=acked)}
        if logged == set(acked) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert logged == set(acked)  # every acknowledged prediction survived
    again = Server(wine)  # and the service comes back on the same log
    try:
        assert httpx.post(again.url + "/predict", json=_rows(1)[0]).status_code == 200
    finally:
        again.stop()


def test_reload_on_promotion_without_failed_requests(wine: Path) -> None:
    s = Server(wine)
    versions: list[tuple[str, int]] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                r = c.post(s.url + "/predict", json=_rows(1, 5)[0])
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    body = r.json()
                    versions.append((body["model"], body["version"]))

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        project = load_project(wine)
        store = open_store(project.store_dir)
        try:
            forest = store.latest_model(project.project, "forest")
            assert forest is not None
            store.set_alias(
                project.project, "champion", forest["id"], datetime.now(UTC), forced=True, note="test"
            )
        finally:
            store.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (not versions or versions[-1][0] != "forest"):
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        s.stop()
        promote("logreg", wine, force=True)  # leave the module's champion as it was
    assert not failures
    assert versions[0][0] == "logreg" and versions[-1][0] == "forest"


def test_refuses_to_start_without_a_servable_model(tmp_path: Path, wine: Path) -> None:
    empty = write_project(tmp_path / "empty", WINE)
    r = subprocess.run(
        [str(FLYWHEEL), "serve", str(empty), "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no store yet" in r.stderr
    project = load_project(wine)
    store = open_store(project.store_dir)
    try:
        champion = store.get_alias(project.project, "champion")
    finally:
        store.close()
    assert champion is not None
    artifact = Path(champion["path"])
    saved = artifact.read_bytes()
    try:
        artifact.write_bytes(b"not a pickle")
        r = subprocess.run(
            [str(FLYWHEEL), "serve", str(wine), "--port", "0"], capture_output=True, text=True, timeout=60
        )
        # The artifact's SHA-256 is checked before anything is unpickled: a changed file is refused.
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "altered since it was saved" in r.stderr
    finally:
        artifact.write_bytes(saved)


DIGITS = """\
project: digits-loop
data: {source: builtin:digits, target: digit, split: {test: 0.25, valid: 0.25, seed: 4}}
objective: {optimize: accuracy}
diagnosis: {forecast: false}
gate: {margin: 0.05, policy: non-inferiority}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 300, C: 0.05}}
"""


def _children(pid: int) -> dict[int, str]:
    """Child processes of ``pid`` (Linux /proc) with their command lines."""
    found: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            found[int(child)] = cmdline
    return found


def test_a_numeric_model_is_served_through_the_fast_path(wine: Path) -> None:
    from flywheel.serving import load_served
    from flywheel.serving._frames import _frame
    from flywheel.serving._served import _predict

    served = load_served(load_project(wine))
    assert served.fast is not None  # numeric features, a column transformer in front
    rows = _rows(40)
    frame = _frame(rows, served.schema.features)
    labels, proba = _predict(served, frame)
    assert proba is not None
    assert (labels == served.model.predict(frame)).all()
    assert proba == pytest.approx(served.model.predict_proba(frame), abs=1e-12)
    assert served.fast.checked == 40 and not served.fast.off


def test_a_model_process_that_cannot_load_the_model_says_why_in_one_line(
    wine: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import dataclasses

    from flywheel.serving import ServeOptions, load_served
    from flywheel.serving._metrics import _Metrics
    from flywheel.serving._state import _State

    project = load_project(wine)
    served = dataclasses.replace(load_served(project), model=LoadsOnlyHere(), fast=None)
    state = _State(project, served, ServeOptions(), _Metrics())
    assert asyncio.run(state._runner(served)) is None  # the service goes on, predicting on its loop
    err = capfd.readouterr().err
    assert err.splitlines() == [
        f"flywheel serve: logreg v{served.version}: the model process did not start (RuntimeError: "
        "this model loads only where it was made); predicting on the event loop"
    ]


def test_model_process_and_event_loop_agree_and_a_dead_model_process_is_replaced(wine: Path) -> None:
    rows = _rows(6, 40)
    on_loop = Server(wine, "--model-on-loop")
    try:
        assert not any("model_process" in c for c in _children(on_loop.proc.pid).values())
        expected = httpx.post(on_loop.url + "/predict", json={"rows": rows}).json()["predictions"]
    finally:
        on_loop.stop()
    s = Server(wine)
    try:
        got = httpx.post(s.url + "/predict", json={"rows": rows}).json()["predictions"]
        assert [p["prediction"] for p in got] == [p["prediction"] for p in expected]
        for a, b in zip(got, expected, strict=True):
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-12)
        workers = [pid for pid, c in _children(s.proc.pid).items() if "flywheel.serving._model_process" in c]
        assert len(workers) == 1
        if slice_ns("self") is not None:  # Linux 6.6+ shows slices
            assert slice_ns(s.proc.pid) == slice_ns(workers[0]) == 100_000  # asked for; inherited
        os.kill(workers[0], signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = httpx.post(s.url + "/predict", json=rows[0], timeout=10)
            statuses.append(r.status_code)
            if r.status_code == 200:
                break
            assert r.status_code == 503 and r.headers["Retry-After"] == "1"
            assert "model process stopped" in r.json()["detail"]
            time.sleep(0.1)
        assert statuses[-1] == 200  # a new model process took over
        replaced = [pid for pid, c in _children(s.proc.pid).items() if "flywheel.serving._model_process" in c]
        assert len(replaced) == 1 and replaced[0] != workers[0]
    finally:
        s.stop()


def test_a_model_of_the_projects_own_class_trains_and_serves(tmp_path: Path) -> None:
    """The class lives in the project folder: the ladder's workers, the artifact, the loader and
    the model process must all find it there."""
    (tmp_path / "house_models.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "class HouseLogistic(LogisticRegression):\n"
        '    """A team\'s own estimator."""\n'
    )
    path = write_project(
        tmp_path,
        WINE.replace("project: wine-serve", "project: house").split("models:")[0]
        + "models:\n  - {name: house, estimator: house_models.HouseLogistic, params: {max_iter: 2000}}\n",
    )
    result = run(path, report=False)
    house = next(e for e in result.evaluations if e.name == "house")
    assert house.error is None, house.error  # was: PicklingError, import of module 'house_models' failed
    promote("house", path, force=True)
    s = Server(path)
    try:
        r = httpx.post(s.url + "/predict", json=_rows(1)[0], timeout=30)
        assert r.status_code == 200 and r.json()["model"] == "house"
        assert any("flywheel.serving._model_process" in c for c in _children(s.proc.pid).values())
        s.errors.seek(0)
        assert "predicting on the event loop" not in s.errors.read()  # the worker imported it too
    finally:
        s.stop()


def test_the_whole_loop_on_digits(tmp_path: Path) -> None:
    """serve → predict → feedback → mine → label → retrain → gate → promote → the service answers with v2."""
    path = write_project(tmp_path / "digits", DIGITS)
    run(path, report=False)
    promote("logreg", path, force=True)
    digits = load_digits(as_frame=True)
    frame, target = digits.frame.drop(columns=["target"]), digits.target.to_numpy()
    s = Server(path)
    try:
        rows = [{k: float(v) for k, v in r.items()} for r in frame.iloc[:300].to_dict(orient="records")]
        answers = httpx.post(s.url + "/predict", json={"rows": rows[:150]}, timeout=30).json()["predictions"]
        answers += httpx.post(s.url + "/predict", json={"rows": rows[150:]}, timeout=30).json()["predictions"]
        truth = {a["prediction_id"]: int(target[i]) for i, a in enumerate(answers)}
        for pid in list(truth)[:120]:  # traffic feedback: a random sample of production
            r = httpx.post(s.url + "/feedback", json={"prediction_id": pid, "label": truth[pid], "by": "ops"})
            assert r.status_code == 200, r.text
        mined = subprocess.run(
            [str(FLYWHEEL), "mine", str(path), "--budget", "30", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert mined.returncode == 0, mined.stderr
        items = json.loads(mined.stdout)
        assert items and all(i["reasons"] and i["model"] == "logreg" and i["version"] == 1 for i in items)
        assert all(
            i["prediction_id"] not in list(truth)[:120]
            for i in items
            if not i["reasons"][0].startswith("label-error")
        )
        labelled = 0
        while True:
            nxt = httpx.get(s.url + "/review/next")
            if nxt.status_code == 404:
                break
            item = nxt.json()
            label = truth.get(item["prediction_id"], 0)
            r = httpx.post(s.url + f"/review/{item['id']}", json={"label": label, "by": "reviewer"})
            assert r.status_code == 200, r.text
            labelled += 1
        assert labelled == len(items)
        retrained = subprocess.run(
            [str(FLYWHEEL), "retrain", str(path), "--json"], capture_output=True, text=True, timeout=300
        )
        assert retrained.returncode in (0, 1, 3), retrained.stderr
        result = json.loads(retrained.stdout)
        assert result["version"] == 2 and result["added_labels"] >= 30 and result["fresh_rows"] > 0
        project = load_project(path)
        split = split_dataset(load_dataset(project.data, project.root), project.data.split)
        assert result["judged_rows"] == result["fresh_rows"] + len(split.test)  # frozen test + fresh traffic
        assert result["verdict"]["status"] == "pass", result["verdict"]["reason"]
        promoted = subprocess.run(
            [str(FLYWHEEL), "promote", "logreg", str(path)], capture_output=True, text=True, timeout=120
        )
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        deadline = time.monotonic() + 15
        version = 1
        while time.monotonic() < deadline and version != 2:
            version = httpx.post(s.url + "/predict", json=rows[0]).json()["version"]
            time.sleep(0.1)
        assert version == 2
        # The report of the next run shows the loop: labels gained and the retrain's judgement.
        report = run(path, save=True).report_path
        assert report is not None
        html = report.read_text(encoding="utf-8")
        assert 'id="labels-over-time"' in html and 'id="retrains"' in html and "logreg v2" in html
        # Open items nominated by v1 expire now that v2 is champion.
        assert (
            subprocess.run(
                [str(FLYWHEEL), "mine", str(path), "--budget", "5"], capture_output=True, timeout=120
            ).returncode
            == 0
        )
    finally:
        s.stop()
    assert os.path.exists(path.parent / ".flywheel" / LOG_NAME)
