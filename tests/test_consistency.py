"""Every number the terminal and the report print agrees with a stored value it came from.

Each example project is run as a user runs it (`flywheel run`); then every number in the
terminal's output and in the report's text (charts aside) must equal, at the precision printed,
a number in the stored run (the store's copy, not the result in memory), a declared number
in `flywheel.yaml`, or a count of stored items. A sentence whose number was computed on the
fly and kept nowhere fails: the contradictions issue 15 found (a "gain" of 101 %, "logged 0"
beside 1,412 logged predictions, intervals that disagree with their summary) were all numbers
with no stored value behind them. Derived numbers are stored with the evidence that states them.
"""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.registry import open_store
from helpers import FLYWHEEL, copy_examples

# A number as printed: optional sign, digits with thousands commas, decimals, exponent, percent.
NUMBER = re.compile(r"(?<![\w.#/:-])([-+−]?)((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?)(%?)(?![\w])")
# Identifiers that are not quantities: run ids, dates, times, fingerprints, the version.
NOT_QUANTITIES = re.compile(
    r"\d{8}-[0-9a-f-]*…?|\d{4}-\d{2}-\d{2}|\d{2}:\d{2}(:\d{2})?|\b[0-9a-f]{16}\b|flywheel \d+\.\d+\.\d+"
)


def _numbers(value: Any, out: list[float]) -> list[float]:
    """Every number stored in ``value``, and the length of every list (a count of stored items)."""
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            out.append(float(value))
    elif isinstance(value, dict):
        for v in value.values():
            _numbers(v, out)
    elif isinstance(value, (list, tuple)):
        out.append(float(len(value)))
        for v in value:
            _numbers(v, out)
    return out


def _unsourced(text: str, pool: list[float]) -> list[str]:
    """The printed numbers no stored value rounds to, with their line."""
    stored = sorted({abs(p) for p in pool} | {abs(100 * p) for p in pool})
    missing = []
    for line in text.splitlines():
        clean = NOT_QUANTITIES.sub(" ", line)
        for m in NUMBER.finditer(clean):
            body = m.group(2).replace(",", "")
            decimals = len(body.split(".")[1]) if "." in body and "e" not in body else 0
            x = abs(float(body))
            tol = 0.5 * 10**-decimals * (1 + 1e-6) + 1e-12
            if "e" in body:
                tol = abs(x) * 0.06  # three significant digits at most
            if not any(abs(x - s) <= tol for s in stored):
                missing.append(f"{m.group(0)!r} in: {line.strip()[:160]}")
    return missing


def _report_text(path: Path) -> str:
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"(?s)<(svg|script|style)\b.*?</\1>", " ", page)  # charts: axis ticks are not claims
    return html.unescape(re.sub(r"(?s)<[^>]+>", "\n", page))


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_examples(tmp_path_factory.mktemp("consistency"))


@pytest.mark.parametrize("name", ["digit-sorter", "progression-triage", "tumour-screening", "wine-grading"])
def test_every_printed_number_is_a_stored_one(examples: Path, name: str) -> None:
    folder = examples / name
    shown = subprocess.run(
        [str(FLYWHEEL), "run", str(folder)], capture_output=True, text=True, timeout=600, cwd=folder
    )
    assert shown.returncode in (0, 1, 3), shown.stderr
    store = open_store(folder / ".flywheel" / "flywheel.db", create=False)
    latest = store.list_runs(limit=1)[0]
    record = store.get_run(latest["id"] if "id" in latest else latest["run_id"])
    assert record is not None
    pool = _numbers(record, [])
    pool += _numbers(yaml.safe_load((folder / "flywheel.yaml").read_text(encoding="utf-8")), [])
    terminal = _unsourced(shown.stdout, pool)
    assert not terminal, "numbers on the terminal with no stored value:\n" + "\n".join(terminal)
    report = _unsourced(_report_text(Path(record["report_path"])), pool)
    assert not report, "numbers in the report with no stored value:\n" + "\n".join(report)
    # The contradictions the issue named, as sentences against the stored values.
    verdict, forecast = record["verdict"], record["forecast"] or {}
    if forecast.get("status") == "met" and verdict["status"] != "pass":
        assert "already met on the valid split" in forecast["text"] and "judged on test" in forecast["text"]
    for row in record["ladder"]:
        assert row["gain"] is None or row["gain"] <= 1 + 1e-9, row  # no gain beyond the ceiling


@pytest.mark.parametrize("command", [["assess"], ["forecast"], ["phase", "show"], ["runs"], ["models"]])
def test_every_number_a_command_prints_is_in_its_json(examples: Path, command: list[str]) -> None:
    """The terminal says no number that the command's `--json` (or the stored run it read) lacks."""
    folder = examples / "wine-grading"
    if not (folder / ".flywheel" / "flywheel.db").exists():
        subprocess.run([str(FLYWHEEL), "run", str(folder)], capture_output=True, timeout=600, cwd=folder)

    def call(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FLYWHEEL), *command, str(folder), *extra], capture_output=True, text=True, timeout=600
        )

    shown, as_json = call(), call("--json")
    assert shown.returncode == as_json.returncode and shown.returncode in (0, 3), shown.stderr
    pool = _numbers(json.loads(as_json.stdout), [])
    pool += _numbers(yaml.safe_load((folder / "flywheel.yaml").read_text(encoding="utf-8")), [])
    store = open_store(folder / ".flywheel" / "flywheel.db", create=False)
    latest = store.list_runs(limit=1)[0]
    pool += _numbers(store.get_run(latest["id"] if "id" in latest else latest["run_id"]), [])  # what it read
    missing = _unsourced(shown.stdout, pool)
    assert not missing, f"numbers `flywheel {' '.join(command)}` prints that its JSON lacks:\n" + "\n".join(
        missing
    )
