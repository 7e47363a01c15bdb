"""The HTML report: self-contained, escaped, and rendered by a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flywheel.pipeline import run
from helpers import write_project

PROJECT = """\
project: report-test
data: {source: builtin:breast_cancer, target: diagnosis, split: {seed: 2}}
objective: {optimize: roc_auc, target: 0.9, constraints: {size_mb: {max: 0.002}}}
baselines:
  human: {roc_auc: 0.97, tier: expert, source: "<script>alert('x')</script>"}
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_project(tmp_path_factory.mktemp("report"), PROJECT)
    result = run(path)
    assert result.report_path is not None
    return result.report_path


def test_report_is_self_contained_and_escaped(report: Path) -> None:
    html = report.read_text()
    # The only scripts are Plotly (written beside the report, never a CDN) and the figures' data;
    # user text is escaped.
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == ['<script src="plotly.min.js">', "<script>"], scripts
    assert (report.parent / "plotly.min.js").stat().st_size > 1_000_000
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)=["']?https?://""", html)  # works offline
    assert "report-test" in html and 'id="leaderboard"' in html


def test_report_shows_verdict_violations_and_declared_values(report: Path) -> None:
    html = report.read_text()
    assert 'class="verdict' in html
    assert "size_mb" in html and "&gt; max 0.002" in html  # a broken constraint, with by how much
    assert "declared human" in html and "not measured here" in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (make test installs it where apt-get is available)")
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    rows = re.findall(r"<tr[^>]*>\s*<td class=\"num\">(\d+)</td>", dom)
    assert rows == ["1", "2", "3", "4", "5"]  # every rung of the ladder is ranked in the rendered table
    assert 'id="ladder-chart"' in dom and 'id="need-ml"' in dom
    for chart in ("ladder", "leaderboard", "curve", "confusion", "calibration"):  # drawn by Plotly
        drawn = re.search(rf'id="{chart}-chart"[^>]*>(.*?)</svg>', dom, re.S)
        assert drawn is not None and 'class="main-svg"' in drawn.group(1), chart
    assert "FAIL" in dom or "INCONCLUSIVE" in dom or "PASS" in dom
