"""What to do next: bias and variance against human level, the learning curve and the forecast of
labels needed, the weakest classes and segments, and the ranked actions they imply.
"""

from flywheel.diagnosis._bias_variance import BiasVariance, Component, Level, bias_variance
from flywheel.diagnosis._curves import (
    Curve,
    CurvePoint,
    Finding,
    read_curve,
    read_history,
)
from flywheel.diagnosis._families import FAMILIES, CurveFamily, CurveFit, fit_curve, select_family
from flywheel.diagnosis._forecast import MAX_ROWS, Forecast, extrapolate, forecast
from flywheel.diagnosis._measure import geometric_sizes, measure_curve
from flywheel.diagnosis._next_actions import Action, Diagnosis, next_actions
from flywheel.diagnosis._plots import Confusion, Reliability, confusion, reliability
from flywheel.diagnosis._slices import benjamini_hochberg
from flywheel.diagnosis._weak_spots import WeakClass, WeakSegment, weak_classes, weak_segments

__all__ = [
    "Action",
    "BiasVariance",
    "Component",
    "Confusion",
    "Curve",
    "CurveFamily",
    "CurveFit",
    "CurvePoint",
    "Diagnosis",
    "FAMILIES",
    "Finding",
    "Forecast",
    "Level",
    "MAX_ROWS",
    "Reliability",
    "WeakClass",
    "WeakSegment",
    "benjamini_hochberg",
    "bias_variance",
    "confusion",
    "extrapolate",
    "fit_curve",
    "forecast",
    "geometric_sizes",
    "measure_curve",
    "next_actions",
    "read_curve",
    "read_history",
    "reliability",
    "select_family",
    "weak_classes",
    "weak_segments",
]
