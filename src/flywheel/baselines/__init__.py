"""Baselines first: the ladder from the most frequent class to small boosted trees, the rule
heuristics it climbs through, the answer to "do we need ML?", and human level (declared or measured
from annotators).
"""

from flywheel.baselines._heuristics import KeywordRule, OneFeatureLinear, OneFeatureRule
from flywheel.baselines._human import HumanLevel, measure_annotators
from flywheel.baselines._ladder import (
    NOT_ML_KINDS,
    NeedML,
    build_ladder,
    declared_baselines,
    default_margin,
    need_ml,
    tree_preprocessor,
)
from flywheel.baselines._table import ladder_table

__all__ = [
    "HumanLevel",
    "KeywordRule",
    "NOT_ML_KINDS",
    "NeedML",
    "OneFeatureLinear",
    "OneFeatureRule",
    "build_ladder",
    "declared_baselines",
    "default_margin",
    "ladder_table",
    "measure_annotators",
    "need_ml",
    "tree_preprocessor",
]
