"""Impact: the declared value a year, less what the best model's errors cost (measured), on a log
scale, with a small bonus for each lens through which the project creates value.
"""

from __future__ import annotations

import math
from typing import Any

from flywheel.project import Project
from flywheel.scoping._evidence import Driver, Evidence, Source, _best, _clip, _combine

__all__: list[str] = []


def _impact(project: Project, run: dict[str, Any] | None) -> tuple[Driver, float | None]:
    """The impact driver, and the net value a year (None when no value is declared)."""
    imp = project.impact
    lines: list[Evidence] = []
    value = imp.value_per_year or None
    net = value
    if value:
        lines.append(Evidence(f"value {value:,.0f} a year", "declared"))
    best = _best(run) if run else None
    metric = project.objective.optimize
    volume, wrong = imp.volume_per_year, project.costs.wrong_prediction
    low_net = high_net = net
    if (
        value
        and best is not None
        and metric == "accuracy"
        and best.get("test_value") is not None
        and volume
        and wrong
    ):
        interval = best.get("test_interval") or [best["test_value"], best["test_value"]]
        cost = (1 - best["test_value"]) * volume * wrong
        net = value - cost
        low_net = value - (1 - interval[0]) * volume * wrong
        high_net = value - (1 - interval[1]) * volume * wrong
        lines.append(
            Evidence(
                f"errors at the best model cost {cost:,.0f} a year: net {net:,.0f}",
                "measured",
                values={"error_cost": cost, "net": net},
            )
        )

    def scale(v: float | None) -> float:
        # Log scale: 1,000 a year or less → 0, 10,000 → 0.33, 100,000 → 0.67, 1,000,000 or more → 1.
        return _clip((math.log10(v) - 3) / 3) if v and v > 1 else 0.0

    if net is not None:
        source: Source = "measured" if net != value else "declared"
        lines.append(
            Evidence(f"net value {net:,.0f} a year", source, scale(net), scale(low_net), scale(high_net))
        )
    for lens in imp.lenses:
        lines.append(Evidence(f"lens: {lens}", "declared"))
    driver = _combine("impact", lines)
    if imp.lenses and lines:
        bonus = min(0.1, 0.03 * len(imp.lenses))  # each lens that applies adds a little, up to 0.1
        driver = Driver(
            driver.name, _clip(driver.score + bonus), driver.low, _clip(driver.high + bonus), lines
        )
    return driver, net
