"""The workbench in a real browser: Debian's Chromium driven by Playwright (never `playwright
install`: the browser is the system's), against `flywheel ui` served for real.

Every page loads with no console error, the portfolio links to the project, five queue items are
labelled with the keyboard and found in the log as review feedback, one is undone and labelled
again, and every control has an accessible name and every text its contrast. A screenshot of each
page is saved in the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.prediction_log import LOG_NAME, read_feedback
from test_workbench import Workbench, _fly, _log_rows

playwright = pytest.importorskip("playwright.sync_api")

# Text under 4.5:1 against its background fails WCAG AA for body text.
_CONTRAST = """() => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor, m = c.match(/[\\d.]+/g);
      if (m && (m.length < 4 || Number(m[3]) > 0)) return c;
    }
    return "rgb(255, 255, 255)";
  };
  const poor = [];
  for (const el of document.querySelectorAll("body *")) {
    const texts = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (el.closest("svg") || !texts) continue;
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") continue;
    const a = lum(style.color), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) poor.push(`${el.tagName} "${el.textContent.trim().slice(0, 40)}" ${ratio.toFixed(2)}`);
  }
  return poor;
}"""

# Every control a person can use has a name a screen reader can say.
_UNNAMED = """() => Array.from(document.querySelectorAll("a, button, input, select, textarea"))
  .filter((el) => !el.closest(".js-plotly-plot"))
  .filter((el) => {
    if (el.type === "hidden") return false;
    const named = el.getAttribute("aria-label") || el.getAttribute("title") || el.textContent.trim()
      || (el.id && document.querySelector(`label[for="${el.id}"]`));
    return !named;
  })
  .map((el) => el.outerHTML.slice(0, 80))"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (make test installs it where apt-get is available)")
    return found


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workbench, Path]]:
    where = tmp_path_factory.mktemp("browser")
    assert _fly(where, "demo").returncode == 0
    project = where / "flywheel-demo"
    _log_rows(project, 300)
    assert _fly(where, "mine", str(project), "--budget", "20").returncode == 0
    assert _fly(where, "monitor", str(project)).returncode in (0, 1, 3)
    server = Workbench(str(project))  # the default: a session token embedded in the queue page
    try:
        yield server, project
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(bench: Any) -> Iterator[Any]:
    executable = _chromium()
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Any, errors: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    return page


def test_every_page_loads_cleanly_is_named_and_readable(bench: Any, browser: Any, tmp_path: Path) -> None:
    server, _ = bench
    errors: list[str] = []
    page = _page(browser, errors)
    base = f"{server.url}/project/digit-sorter"
    for name, url in (
        ("portfolio", server.url + "/"),
        ("project", base),
        ("runs", base + "/runs"),
        ("monitor", base + "/monitor"),
        ("queue", base + "/queue"),
    ):
        page.goto(url, wait_until="networkidle")
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        charts = page.locator(".chart")
        assert page.locator(".chart .main-svg").count() >= charts.count(), name  # each chart drew
        assert page.evaluate(_UNNAMED) == [], name
        assert page.evaluate(_CONTRAST) == [], name
    assert errors == []
    page.goto(base, wait_until="networkidle")
    for chart in ("leaderboard", "ladder", "curve", "confusion", "calibration"):  # digits: all of them
        assert page.locator(f"#chart-{chart} .main-svg").count() >= 1, chart
    page.goto(server.url + "/", wait_until="networkidle")
    assert page.locator(".js-plotly-plot").count() >= 1  # the chart drew, from the app's own Plotly
    page.click('a[href="/project/digit-sorter"]')
    page.wait_for_url(base)
    assert "digit-sorter" in page.title()
    assert errors == []


def test_five_items_labelled_by_keyboard_become_feedback_and_one_is_undone(bench: Any, browser: Any) -> None:
    server, project = bench
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(f"{server.url}/project/digit-sorter/queue", wait_until="networkidle")
    page.fill("#by", "ana")  # no token to type: the page carries this session's
    page.locator("#by").dispatch_event("change")
    labelled = []
    for key in "12345":
        item = page.locator("#item").get_attribute("data-item")
        page.evaluate("document.activeElement && document.activeElement.blur()")  # keys, not typing
        with page.expect_navigation():
            page.keyboard.press(key)
        labelled.append((item, key))
    assert [i for i, _ in labelled] == list(dict.fromkeys(i for i, _ in labelled))  # five different items
    with page.expect_navigation():
        page.keyboard.press("u")  # the last item again
    assert page.locator("#item").get_attribute("data-item") == labelled[-1][0]
    with page.expect_navigation():
        page.keyboard.press("7")
    assert errors == []

    from flywheel.loop import list_queue
    from flywheel.project import load_project

    items = {i.id: i for i in list_queue(load_project(project), None)}
    given = {i.prediction_id: i for i in items.values() if i.id in {item for item, _ in labelled}}
    assert len(given) == 5 and all(i.labelled_by == "ana" for i in given.values())
    history = [f for f in read_feedback(project / ".flywheel" / LOG_NAME) if f["prediction_id"] in given]
    assert [f["origin"] for f in history] == ["review"] * 6
    keyed = {label for _, label in labelled}  # the keys 1-5 are the digits 1-5 here
    assert {f["label"] for f in history[:5]} == keyed and history[-1]["label"] == "7"
    assert items[labelled[-1][0]].label == "7"  # the undone item shows its new label
