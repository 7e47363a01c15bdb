"""The service's limits and policies on a real ``flywheel serve`` (127.0.0.1, port 0): a body over
``--max-body-mb`` refused before it is read (declared or chunked), labels of the classes' type,
feedback kept as history with the latest label winning and conflicts sent to the review queue, the
bearer token on the routes that write labels, and ``/docs`` / ``/redoc`` that load nothing from
another host."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import socket
import stat
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from flywheel.errors import FlywheelError
from flywheel.evaluation import Schema
from flywheel.pipeline import promote, run
from flywheel.prediction_log import LOG_NAME, connect, read_feedback, read_labels
from flywheel.project import load_project
from flywheel.registry import flywheel_summary
from helpers import write_project
from test_serve import Server, _rows

WINE = """\
project: wine-limits
data: {source: builtin:wine, target: cultivar, split: {test: 0.25, valid: 0.25, seed: 1}}
objective: {optimize: accuracy}
diagnosis: {forecast: false}
models:
  - {name: logreg, estimator: sklearn.linear_model.LogisticRegression, params: {max_iter: 2000}}
"""
MB = 1 << 20


class Service:
    """A served wine model with a 1 MB body limit and a token; ``auth`` carries the token."""

    def __init__(self, server: Server, project: Path, token_file: Path, first_line: str) -> None:
        self.server = server
        self.url = server.url
        self.project = project
        self.token_file = token_file
        self.first_line = first_line
        self.auth = {"Authorization": f"Bearer {token_file.read_text().strip()}"}

    @property
    def log(self) -> Path:
        return self.project.parent / ".flywheel" / LOG_NAME


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("limits")
    path = write_project(folder, WINE)
    run(path, report=False)
    promote("logreg", path, force=True)
    token_file = folder / "secret" / "token"
    token_file.parent.mkdir()
    s = Server(path, "--max-body-mb", "1", "--max-batch", "20", "--token-file", str(token_file))
    try:
        yield Service(s, path, token_file, s.first_line)
    finally:
        s.stop()


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the one response on ``sock`` (read to its declared length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


# --- the body's byte limit ---------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(service: Service) -> None:
    sock = _raw(service.url)
    sock.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 117000000\r\n\r\n" + b" " * 65536
    )
    status, body = _response(sock)  # answered with 64 KB of the 117 MB sent: it never waited for the rest
    sock.close()
    assert status == 413
    assert body["detail"] == (
        "body: more than the limit of 1 MB (1,048,576 bytes) per request (--max-body-mb); "
        "Content-Length says 112 MB (117,000,000 bytes)"
    )


def test_a_chunked_body_is_cut_off_once_past_the_limit(service: Service) -> None:
    sock = _raw(service.url)
    sock.sendall(
        b"POST /feedback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nAuthorization: "
        + service.auth["Authorization"].encode()
        + b"\r\n\r\n"
    )
    chunk = b" " * 65536
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # the server may close first
        for _ in range(MB // len(chunk) + 64):  # 4 MB past the limit unless the server closes
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    status, body = _response(sock)
    sock.close()
    assert status == 413, body
    found = re.search(r"\(([\d,]+) bytes\) had arrived when reading stopped$", body["detail"])
    assert found and body["detail"].startswith("body: more than the limit of 1 MB (1,048,576 bytes)")
    arrived = int(found.group(1).replace(",", ""))
    # No further than the limit plus what the server's buffers held, far short of the 4 MB on offer.
    assert MB < arrived <= MB + 8 * len(chunk)
    assert httpx.get(service.url + "/health").status_code == 200


def test_deeply_nested_json_is_refused_not_a_server_error(service: Service) -> None:
    for route in ("/predict", "/feedback"):
        r = httpx.post(
            service.url + route,
            content=b"[" * 100_000,
            headers={"content-type": "application/json", **service.auth},
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("body: nested too deeply to be a request")


def test_a_body_within_the_limit_is_read(service: Service) -> None:
    row = json.dumps(_rows(1)[0]).encode()
    just_under = row + b" " * (MB - len(row))
    r = httpx.post(service.url + "/predict", content=just_under, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    over = httpx.post(service.url + "/predict", content=just_under + b" ")
    assert over.status_code == 413 and "1,048,577 bytes" in over.json()["detail"]


def test_a_value_the_model_cannot_take_is_refused_and_fails_only_its_own_request(service: Service) -> None:
    poison = {**_rows(1)[0], "hue": 1.7976931348623157e308}  # finite, but infinite once scaled
    r = httpx.post(service.url + "/predict", json={"rows": [_rows(1)[0], poison]})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("body: the model cannot predict for these values (ValueError: ")
    assert httpx.post(service.url + "/predict", json=_rows(1)[0]).status_code == 200


def test_a_failing_group_in_the_model_process_is_answered_request_by_request() -> None:
    from flywheel.prediction_log import take_frames
    from flywheel.serving._model_process import _answer

    class Model:
        schema = Schema({"x": "numeric"}, "classification", ["a", "b"], "y")

    def predict(served: Any, rows: list[dict[str, float]]) -> tuple[list[str], None]:
        if any(math.isinf(r["x"]) for r in rows):
            raise ValueError("Input X contains infinity")
        return ["a"] * len(rows), None

    frames = _answer(
        Model(), [(1, [{"x": 1.0}]), (2, [{"x": math.inf}]), (3, [{"x": 2.0}])], lambda r, f: r, predict
    )
    answers = take_frames(bytearray(b"".join(frames)))
    assert [(seq, labels, error) for seq, labels, _, error in answers] == [
        (1, ["a"], None),
        (2, None, "ValueError: Input X contains infinity"),
        (3, ["a"], None),
    ]


def test_a_failing_group_on_the_event_loop_is_answered_request_by_request(service: Service) -> None:
    import asyncio
    import dataclasses
    import warnings

    from flywheel.serving import ModelFailed, load_served
    from flywheel.serving._batcher import _Batcher
    from flywheel.serving._frames import _frame

    served = load_served(load_project(service.project))
    served = dataclasses.replace(served, fast=None)
    good = _frame(_rows(2), served.schema.features)
    bad = _frame([{**_rows(1)[0], "hue": 1.7976931348623157e308}], served.schema.features)

    async def together() -> list[Any]:
        batcher = _Batcher()  # both requests wait for one drain: one model call for the two
        calls = [batcher.predict(served, frame, lambda labels, proba: list(labels)) for frame in (good, bad)]
        return await asyncio.gather(*calls, return_exceptions=True)

    with warnings.catch_warnings():  # as in the service: numpy's overflow warning is no error there
        warnings.simplefilter("ignore", RuntimeWarning)
        answered, failed = asyncio.run(together())
    assert answered == list(served.model.predict(good))
    assert isinstance(failed, ModelFailed) and failed.by_input and failed.reason.startswith("ValueError: ")


# --- labels ------------------------------------------------------------------------------------

DIGITS = Schema({"x": "numeric"}, "classification", list(range(10)), "digit")
WORDS = Schema({"x": "numeric"}, "classification", ["cat", "dog"], "animal")
PRICES = Schema({"x": "numeric"}, "regression", None, "price")


@pytest.mark.parametrize(
    ("schema", "label", "allow_new", "expected"),
    [
        (DIGITS, 3, False, 3),
        (
            DIGITS,
            "3",
            False,
            'must be one of the classes 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 (JSON integer); got "3"',
        ),
        (DIGITS, 3.0, False, "got 3.0 (JSON number)"),
        (DIGITS, True, False, "got true (JSON boolean)"),
        (DIGITS, 11, False, "label: 11 is not a known class (0, 1, 2"),
        (DIGITS, 11, True, 11),
        (DIGITS, "eleven", True, 'got "eleven" (JSON string)'),
        (WORDS, "dog", False, "dog"),
        (WORDS, 0, False, 'must be one of the classes "cat", "dog" (JSON string); got 0 (JSON integer)'),
        (PRICES, 3, False, 3.0),
        (PRICES, 2.5, False, 2.5),
        (PRICES, "3", False, "label: must be a finite number for a regression target; got '3'"),
        (PRICES, math.nan, False, "must be a finite number"),
        (PRICES, math.inf, False, "must be a finite number"),
        (PRICES, 10**400, False, "must be a finite number"),
        (PRICES, True, False, "must be a finite number"),
    ],
)
def test_a_label_must_have_the_type_of_the_classes(
    schema: Schema, label: Any, allow_new: bool, expected: Any
) -> None:
    from flywheel.serving._requests import _label_for, _Refused

    if isinstance(expected, str) and not (schema is WORDS and expected == "dog"):
        with pytest.raises(_Refused) as refused:
            _label_for(label, schema, allow_new)
        assert refused.value.status == 422 and expected in str(refused.value)
        assert "\n" not in str(refused.value)
    else:
        got = _label_for(label, schema, allow_new)
        assert got == expected and type(got) is type(expected)


def test_the_service_refuses_a_label_of_another_type(service: Service) -> None:
    pid = httpx.post(service.url + "/predict", json=_rows(1)[0]).json()["prediction_id"]
    r = httpx.post(service.url + "/feedback", json={"prediction_id": pid, "label": 0}, headers=service.auth)
    assert r.status_code == 422
    assert r.json()["detail"] == (
        'label: must be one of the classes "class_0", "class_1", "class_2" (JSON string); '
        "got 0 (JSON integer)"
    )


# --- feedback: history, latest wins, conflicts -----------------------------------------------


def test_feedback_is_kept_as_history_the_latest_wins_and_a_conflict_reaches_the_queue(
    service: Service,
) -> None:
    pid = httpx.post(service.url + "/predict", json=_rows(1, 20)[0]).json()["prediction_id"]
    answers = []
    for label, by in [("class_0", "ann"), ("class_1", "bob"), ("class_1", "cid")]:
        r = httpx.post(
            service.url + "/feedback",
            json={"prediction_id": pid, "label": label, "by": by},
            headers=service.auth,
        )
        assert r.status_code == 200, r.text
        answers.append(r.json())
    assert [(a["replaces"], a["conflict"]) for a in answers] == [
        (None, False),
        ("class_0", True),
        ("class_1", True),
    ]
    history = [f for f in read_feedback(service.log) if f["prediction_id"] == pid]
    assert [(f["label"], f["source"]) for f in history] == [
        ("class_0", "ann"),
        ("class_1", "bob"),
        ("class_1", "cid"),
    ]
    assert all(a["at"] <= b["at"] for a, b in itertools.pairwise(history))
    latest = next(e for e in read_labels(service.log) if e["prediction_id"] == pid)
    assert latest["label"] == "class_1" and latest["source"] == "cid" and latest["conflict"]

    item = httpx.get(service.url + "/review/next", headers=service.auth).json()
    assert item["prediction_id"] == pid and item["score"] >= 10
    assert item["reasons"][0] == "conflict (class_0 by ann vs class_1 by bob, cid)"
    assert [c["label"] for c in item["conflict"]] == ["class_0", "class_1", "class_1"]
    done = httpx.post(
        service.url + f"/review/{item['id']}", json={"label": "class_1", "by": "rev"}, headers=service.auth
    )
    assert done.status_code == 200 and done.json()["status"] == "labelled"
    settled = next(e for e in read_labels(service.log) if e["prediction_id"] == pid)
    assert settled["label"] == "class_1" and settled["origin"] == "review" and not settled["conflict"]
    assert len(settled["history"]) == 4
    summary = flywheel_summary(load_project(service.project))
    assert summary is not None  # four labels, one labelled prediction: gained once
    assert summary["labels"] == len({e["prediction_id"] for e in read_labels(service.log)})
    nxt = httpx.get(service.url + "/review/next", headers=service.auth)
    assert nxt.status_code == 404 or nxt.json()["prediction_id"] != pid


def test_labels_read_latest_first_and_conflicts_survive_a_new_champion(tmp_path: Path) -> None:
    from flywheel.loop import expire_items, list_queue

    project = load_project(write_project(tmp_path / "p", WINE))
    log = project.store_dir / LOG_NAME
    conn = connect(log)
    conn.executemany(
        "INSERT INTO predictions VALUES (?, ?, 'logreg', 1, '{\"x\": 1}', '\"cat\"', NULL, 1.0)",
        [("p1", 1.0), ("p2", 2.0)],
    )
    conn.executemany(
        "INSERT INTO feedback(prediction_id, label, source, at, origin) VALUES (?, ?, ?, ?, 'traffic')",
        [
            ("p1", "cat", "a", 10.0),
            ("p2", "dog", "a", 11.0),
            ("p1", "dog", "b", 12.0),
            ("p2", "dog", "c", 13.0),
        ],
    )
    conn.close()
    labels = read_labels(log)
    assert [(e["prediction_id"], e["label"], e["conflict"]) for e in labels] == [
        ("p1", "dog", True),
        ("p2", "dog", False),
    ]
    assert [e["prediction_id"] for e in read_labels(log, conflicts_only=True)] == ["p1"]
    items = list_queue(project)
    assert [(i.prediction_id, i.reasons) for i in items] == [("p1", ["conflict (cat by a vs dog by b)"])]
    assert items[0].input == {"x": 1} and items[0].prediction == "cat" and items[0].model == "logreg"
    assert list_queue(project) == items  # reading again changes nothing
    assert expire_items(project, ("forest", 1)) == 0  # a conflict needs a reviewer whichever model serves
    assert [i.id for i in list_queue(project)] == [items[0].id]


# --- the token ---------------------------------------------------------------------------------


def test_the_token_file_is_generated_private_and_said_once(service: Service) -> None:
    assert stat.S_IMODE(service.token_file.stat().st_mode) == 0o600
    assert len(service.token_file.read_text().strip()) >= 40
    said = f"/feedback, /outcome and /review need a new token, mode 0600, in {service.token_file}"
    assert said in service.first_line


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/feedback", {"prediction_id": "nope", "label": "class_0"}),
        ("GET", "/review/next", None),
        ("POST", "/review/zzz", {"label": "class_0"}),
    ],
)
def test_the_routes_that_write_labels_need_the_token(
    service: Service, method: str, path: str, body: Any
) -> None:
    url = service.url + path
    for headers, detail in [
        ({}, "Authorization: required here; send 'Authorization: Bearer <token>'"),
        ({"Authorization": "Bearer wrong"}, "Authorization: not this service's bearer token"),
        ({"Authorization": "Basic " + service.auth["Authorization"][7:]}, "Authorization: required here"),
    ]:
        r = httpx.request(method, url, json=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["detail"].startswith(detail) and "\n" not in r.text
    assert httpx.request(method, url, json=body, headers=service.auth).status_code in (200, 404)
    assert httpx.post(service.url + "/predict", json=_rows(1)[0]).status_code == 200  # stays open


def test_a_token_file_is_read_when_it_exists(tmp_path: Path) -> None:
    from flywheel.serving import load_token

    path = tmp_path / "token"
    token, created = load_token(path)
    assert created and load_token(path) == (token, False)
    path.write_text("two words\n")
    with pytest.raises(FlywheelError, match="must hold one token on one line"):
        load_token(path)
    with pytest.raises(FlywheelError, match="cannot write a new token there"):
        load_token(tmp_path / "missing" / "token")


# --- the documentation pages -------------------------------------------------------------------


class _Assets(HTMLParser):
    """Every URL a page loads: script sources, stylesheets and icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(str(found[name]))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_everything_from_the_service(service: Service, page: str) -> None:
    html = httpx.get(service.url + page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    parser = _Assets()
    parser.feed(html.text)
    assert len(parser.urls) >= 2, parser.urls  # a script and an icon at least
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # on this host
        asset = httpx.get(service.url + url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert not re.search(r"https?://", html.text)  # nothing else refers to another host
    assert httpx.get(service.url + "/openapi.json").status_code == 200
