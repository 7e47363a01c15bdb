"""The workbench (`flywheel ui`) served for real: every page, the 404s, labelling from the queue
page becoming review feedback in the log, the token (a token file's, or the session token the page
carries), the Host guard against DNS rebinding, and the read-only mode without write routes.

The demo project is made once per module; its log is filled directly (as the service's writer
would) and `flywheel mine` and `flywheel monitor` fill the queue and the monitor result, so no
prediction service is needed.
"""

from __future__ import annotations

import html
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flywheel.prediction_log import LOG_NAME, PredictionRecord, connect, read_labels
from helpers import FLYWHEEL

PAGES = ("", "/runs", "/monitor", "/queue")


def _fly(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FLYWHEEL), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _log_rows(project: Path, count: int) -> None:
    """The demo's own digits as logged predictions, with class probabilities, an hour ago."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame.drop(columns=["target"]).head(count)
    start = time.time() - 3600
    rows = [{k: float(v) for k, v in r.items()} for r in frame.to_dict("records")]
    proba = {str(c): (0.55 if c == 3 else 0.05) for c in range(10)}
    conn = connect(project / ".flywheel" / LOG_NAME)
    try:
        conn.executemany(
            "INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?)",
            [
                PredictionRecord(uuid.uuid4().hex, start + i, "rbf-svm", 1, row, 3, proba, 2.0).row()
                for i, row in enumerate(rows)
            ],
        )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("wb")
    assert _fly(where, "demo").returncode == 0
    project = where / "flywheel-demo"
    _log_rows(project, 300)
    assert _fly(where, "mine", str(project)).returncode == 0
    assert _fly(where, "monitor", str(project)).returncode in (0, 1, 3)
    return project


class Workbench:
    """``flywheel ui`` in a subprocess; the port comes from the line it prints once bound."""

    def __init__(self, *args: str) -> None:
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - open for the server's lifetime
        self.proc = subprocess.Popen(
            [str(FLYWHEEL), "ui", *args, "--port", "0"], stdout=subprocess.PIPE, stderr=self.errors, text=True
        )
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", self.first_line)
        if not found:
            self.stop()
            self.errors.seek(0)
            raise AssertionError(f"no address in {self.first_line!r}: {self.errors.read()}")
        self.url = f"http://127.0.0.1:{found.group(1)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()


@pytest.fixture(scope="module")
def guarded(demo: Path) -> Iterator[tuple[Workbench, str]]:
    token_file = demo.parent / "token"
    bench = Workbench(str(demo), "--token-file", str(token_file))
    try:
        yield bench, token_file.read_text().strip()
    finally:
        bench.stop()


@pytest.fixture(scope="module")
def session(demo: Path) -> Iterator[Workbench]:
    """``flywheel ui`` without --token-file: labelling needs the session token the page carries."""
    bench = Workbench(str(demo))
    try:
        yield bench
    finally:
        bench.stop()


def _feedback_count(demo: Path) -> int:
    conn = connect(demo / ".flywheel" / LOG_NAME)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
    finally:
        conn.close()


def _stored_run(demo: Path) -> dict[str, Any]:
    from flywheel.registry import open_store

    store = open_store(demo / ".flywheel", create=False)
    try:
        run = store.latest_run("digit-sorter")
    finally:
        store.close()
    assert run is not None
    return run


def _run_id(demo: Path) -> str:
    from flywheel.registry import open_store

    store = open_store(demo / ".flywheel", create=False)
    try:
        return str(store.list_runs()[0]["id"])
    finally:
        store.close()


def test_every_page_renders_offline_and_unknown_names_are_404_pages(
    demo: Path, guarded: tuple[Workbench, str]
) -> None:
    bench, _ = guarded
    assert "labelling needs a new token" in bench.first_line
    base = f"{bench.url}/project/digit-sorter"
    run = _run_id(demo)
    with httpx.Client(timeout=60) as client:
        home = client.get(bench.url + "/")
        assert home.status_code == 200 and 'href="/project/digit-sorter"' in home.text
        assert "Plotly.newPlot" in home.text and "feasibility (data" in home.text
        for page in (*PAGES, f"/runs/compare?a={run}&b={run}"):
            answer = client.get(base + page)
            assert answer.status_code == 200, (page, answer.text)
            assert not re.search(r'(src|href)="(https?:)?//', answer.text), page  # nothing from a CDN
        project = client.get(base).text
        assert all(
            f'id="{s}"' in project
            for s in ("verdict", "actions", "leaderboard", "ladder", "curve", "diagnosis", "lifecycle")
        )
        # The diagnosis as the run stored it: the bias/variance sentence, the forecast's, the weak class.
        stored = _stored_run(demo)
        assert html.escape(stored["diagnosis"]["bias_variance"]["summary"], quote=False) in project
        assert html.escape(stored["forecast"]["text"], quote=False) in project
        weak = [c for c in stored["diagnosis"]["classes"] if c["weak"]]
        assert ('id="weak-classes-table"' in project) == bool(weak)
        assert "the best leads by" in project and "'metric':" not in project
        assert 'href="#readiness"' in project and "declared" in project and "measured" in project
        assert "windows-table" in client.get(base + "/monitor").text
        assert client.get(bench.url + "/static/plotly.min.js").status_code == 200
        for url, named in (
            ("/project/no-such", "'no-such'"),
            ("/project/digit-sorter/runs/compare?a=nope&b=" + run, "'nope'"),
            ("/project/digit-sorter/queue?show=ghost", "'ghost'"),
            ("/elsewhere", "'/elsewhere'"),
        ):
            missing = client.get(bench.url + url)
            assert missing.status_code == 404 and named in html.unescape(missing.text), url


def test_the_queue_page_shows_one_item_with_its_reasons_keys_and_top_classes(
    guarded: tuple[Workbench, str],
) -> None:
    bench, token = guarded
    page = httpx.get(f"{bench.url}/project/digit-sorter/queue", timeout=60).text
    assert 'id="label-form"' in page and 'id="token"' in page and 'for="by"' in page
    assert token not in page and 'type="hidden"' not in page  # a token file's token is typed, not embedded
    assert re.search(r'data-key="7"\s+aria-label="label 7 \(key 7\)"', page)
    assert 'class="reason"' in page and "3 (55%)" in page and 'id="skip"' in page
    item = re.search(r'data-item="(\w+)"', page)
    assert item
    # The log says 3 for every row; the champion mining asked may say otherwise, and then the page
    # names both instead of a sentence whose top class contradicts the prediction it states.
    says = re.search(r'id="model-says">The model says <strong>([^<]+)</strong>', page)
    assert says
    assert ("said <strong>3</strong>" in page) == (says.group(1) != "3")
    skipped = httpx.get(f"{bench.url}/project/digit-sorter/queue?skip={item.group(1)}", timeout=60).text
    assert f'data-item="{item.group(1)}"' not in skipped and "skipped in this page" in skipped


def test_a_label_needs_the_token_must_be_a_class_and_becomes_review_feedback(
    demo: Path, guarded: tuple[Workbench, str]
) -> None:
    bench, token = guarded
    queue = f"{bench.url}/project/digit-sorter/queue"
    first = re.search(r'data-item="(\w+)"', httpx.get(queue, timeout=60).text)
    assert first
    item = first.group(1)
    json_ = {"accept": "application/json"}
    assert httpx.post(f"{queue}/{item}", data={"label": "4"}, headers=json_).status_code == 401
    wrong = httpx.post(f"{queue}/{item}", data={"label": "4", "token": "nope"}, headers=json_)
    assert wrong.status_code == 401 and "token" in wrong.json()["detail"]
    outside = httpx.post(f"{queue}/{item}", data={"label": "12", "token": token})
    assert outside.status_code == 422 and "must be one of the classes 0, 1, 2" in outside.text
    assert "got &#39;12&#39;" in outside.text and 'role="alert"' in outside.text
    done = httpx.post(f"{queue}/{item}", data={"label": "4", "by": "ana", "token": token})
    assert done.status_code == 303 and done.headers["location"].endswith(f"?last={item}")
    labels = {r["prediction_id"]: r for r in read_labels(demo / ".flywheel" / LOG_NAME)}
    mine = [r for r in labels.values() if r["label"] == "4" and r["origin"] == "review"]
    assert len(mine) == 1 and mine[0]["source"] == "ana"
    after = httpx.get(bench.url + done.headers["location"], timeout=60).text
    assert f'data-item="{item}"' not in after and 'id="undo"' in after
    undo = httpx.get(f"{queue}?show={item}", timeout=60).text
    assert 'id="relabel-note"' in undo and "Labelled <strong>4</strong> by ana" in undo
    again = httpx.post(
        f"{queue}/{item}",
        json={"label": 5, "by": "ana"},
        headers={**json_, "authorization": f"Bearer {token}"},
    )
    assert again.status_code == 200 and again.json()["label"] == "5"
    latest = {r["prediction_id"]: r for r in read_labels(demo / ".flywheel" / LOG_NAME)}
    fixed = latest[mine[0]["prediction_id"]]
    assert (
        fixed["label"] == "5"
        and [h["label"] for h in fixed["history"]] == ["4", "5"]
        and not fixed["conflict"]
    )


def test_without_a_token_file_the_page_carries_a_session_token_that_labelling_needs(
    demo: Path, session: Workbench
) -> None:
    assert "guarded by a session token embedded in the page" in session.first_line
    queue = f"{session.url}/project/digit-sorter/queue"
    page = httpx.get(queue, timeout=60).text
    embedded = re.search(r'<input type="hidden" name="token" value="([\w-]+)">', page)
    item = re.search(r'data-item="(\w+)"', page)
    assert embedded and item and 'id="token"' not in page  # nothing to type
    token, item_id = embedded.group(1), item.group(1)
    assert len(token) >= 40 and token not in session.first_line  # secrets.token_urlsafe(32), in memory
    before = _feedback_count(demo)
    # What a form on another site can send: no token, or a guess. Refused, and nothing is written.
    bare = httpx.post(f"{queue}/{item_id}", data={"label": "4", "by": "mallory"})
    assert bare.status_code == 401 and 'role="alert"' in bare.text and "token is required" in bare.text
    json_ = {"accept": "application/json"}
    guess = httpx.post(f"{queue}/{item_id}", data={"label": "4", "token": "guess"}, headers=json_)
    assert guess.status_code == 401 and "session token" in guess.json()["detail"]
    assert guess.headers["www-authenticate"] == "Bearer"
    assert _feedback_count(demo) == before
    assert f'data-item="{item_id}"' in httpx.get(queue, timeout=60).text  # still open
    # The page's own form, as the browser sends it.
    done = httpx.post(f"{queue}/{item_id}", data={"label": "6", "by": "ana", "token": token})
    assert done.status_code == 303 and done.headers["location"].endswith(f"?last={item_id}")
    assert _feedback_count(demo) == before + 1
    given = [r for r in read_labels(demo / ".flywheel" / LOG_NAME) if r["label"] == "6"]
    assert len(given) == 1 and given[0]["source"] == "ana" and given[0]["origin"] == "review"
    again = httpx.post(
        f"{queue}/{item_id}",
        json={"label": 7, "by": "ana"},
        headers={**json_, "authorization": f"Bearer {token}"},
    )
    assert again.status_code == 200 and again.json()["label"] == "7"


def test_a_host_header_naming_another_host_is_refused_on_loopback(
    demo: Path, session: Workbench, guarded: tuple[Workbench, str]
) -> None:
    port = session.url.rsplit(":", 1)[1]
    queue = f"{session.url}/project/digit-sorter/queue"
    for host in (f"localhost:{port}", "localhost", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert httpx.get(queue, headers={"host": host}, timeout=60).status_code == 200, host
    before = _feedback_count(demo)
    for bench in (session, guarded[0]):
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", "10.0.0.1"):
            for method in ("GET", "POST"):
                refused = httpx.request(
                    method,
                    f"{bench.url}/project/digit-sorter/queue",
                    headers={"host": host},
                    data={"label": "1"},
                )
                assert refused.status_code == 400, (host, method)
                text = refused.text.strip()
                assert len(text.splitlines()) == 1 and "loopback" in text and "digit-sorter" not in text
                assert "token" not in text and 'type="hidden"' not in text
    assert _feedback_count(demo) == before


def test_read_only_has_no_write_route_and_the_queue_says_why(demo: Path) -> None:
    bench = Workbench(str(demo), "--read-only")
    try:
        assert "read-only" in bench.first_line
        page = httpx.get(f"{bench.url}/project/digit-sorter/queue", timeout=60).text
        assert 'id="read-only-note"' in page and 'id="label-form"' not in page
        item = re.search(r'data-item="(\w+)"', page)
        assert item
        refused = httpx.post(f"{bench.url}/project/digit-sorter/queue/{item.group(1)}", data={"label": "1"})
        assert refused.status_code == 405 and "read-only" in refused.text
    finally:
        bench.stop()


def test_bad_input_is_one_line_and_exit_2(demo: Path, tmp_path: Path) -> None:
    missing = _fly(tmp_path, "ui", str(tmp_path / "nowhere"), "--port", "0")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = _fly(tmp_path, "ui", str(demo), "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "cannot listen there" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1
    # Labelling open to the network with no token of the user's: refused before anything listens.
    wide = _fly(tmp_path, "ui", str(demo), "--host", "0.0.0.0", "--port", "0")
    assert wide.returncode == 2 and wide.stdout == "" and "Traceback" not in wide.stderr
    assert len(wide.stderr.strip().splitlines()) == 1
    assert "--host 0.0.0.0: labelling on a non-loopback address needs --token-file" in wide.stderr
    assert "--read-only" in wide.stderr
