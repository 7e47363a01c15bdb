"""Calibration of the label forecast on 100 measured learning curves (tests/fixtures/learning_curves.json).

For each curve the largest ``k`` sizes are held out (k = 1, 2, 3: extrapolating 1.6×, 2.7× and
4.4× past the largest size fitted), the forecast's blend is fitted on the rest, and its nominal
80 % interval for the mean at the largest size is checked against the measured mean. Printed:
coverage, and the median and 90th-percentile absolute error of the blend's point next to each
single family (fitted alone, as the forecast chose one before) and to the last measured value.
The target (issue 15) is coverage in 75–85 %. Run: ``python benchmarks/forecast_calibration.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from flywheel.diagnosis import FAMILIES, Curve, CurvePoint, extrapolate, fit_curve
from flywheel.diagnosis._families import _weights

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "learning_curves.json"


def held_out(c: dict, hold: int) -> tuple[Curve, int, float]:
    """The curve without its largest ``hold`` sizes, the largest size, and the mean measured there."""
    sizes = sorted({p["size"] for p in c["points"]})
    cut, big = sizes[-hold], sizes[-1]
    pts = tuple(CurvePoint(p["size"], p["seed"], None, p["valid"]) for p in c["points"] if p["size"] < cut)
    curve = Curve(c["metric"], True, 1.0, "size", pts, c["learner"], valid_se=c["valid_se"])
    return curve, big, float(np.mean([p["valid"] for p in c["points"] if p["size"] == big]))


def main() -> None:
    curves = json.loads(FIXTURE.read_text())["curves"]
    print(f"{len(curves)} curves from {FIXTURE.name}; nominal 80 % intervals")
    header = f"{'held out':>9} {'coverage':>9} {'width':>7}   " + "  ".join(
        f"{k:>13}" for k in ["blend", *FAMILIES, "last value"]
    )
    print(header + "\n" + " " * 31 + "  ".join(f"{'median / p90':>13}" for _ in range(len(FAMILIES) + 2)))
    for hold in (1, 2, 3):
        start = time.perf_counter()
        covered, width = [], []
        errors: dict[str, list[float]] = {k: [] for k in ["blend", *FAMILIES, "last value"]}
        for c in curves:
            curve, big, truth = held_out(c, hold)
            ((point, low, high),) = extrapolate(curve, [big], confidence=0.8)
            covered.append(low <= truth <= high)
            width.append(high - low)
            errors["blend"].append(abs(point - truth))
            sizes = np.array([p.size for p in curve.points], dtype=float)
            errs = curve.error([p.valid for p in curve.points])
            for fam in FAMILIES:
                fit = fit_curve(sizes, errs, fam, n_ref=float(sizes.max()), weights=_weights(sizes, errs))
                alone = np.nan if fit is None else float(curve.value(fit.error_at(big)))
                errors[fam].append(abs(alone - truth))
            last = max(p.size for p in curve.points)
            errors["last value"].append(
                abs(np.mean([p.valid for p in curve.points if p.size == last]) - truth)
            )
        cells = "  ".join(
            f"{np.nanmedian(v):>6.4f}/{np.nanquantile(v, 0.9):.4f}".rjust(13) for v in errors.values()
        )
        print(
            f"{hold:>9} {np.mean(covered):>8.0%} {np.median(width):>7.4f}   {cells}"
            f"   ({time.perf_counter() - start:.0f} s)"
        )
    print("single families: each fitted alone on every size, as one chosen family was before the blend")


if __name__ == "__main__":
    main()
