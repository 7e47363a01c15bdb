"""ROC AUC and average precision as weighted rank statistics over distinct scores.

The scores are sorted once; each row then only contributes a weight to its
(distinct score, label) cell. AUC and AP are functions of those cell weights,
so a bootstrap resample is a new weight vector over the cells, never a new
sort. With ``w_pos[v]`` and ``w_neg[v]`` the weights of positive and negative
rows at the v-th distinct score (ascending)::

    AUC = sum_v w_pos[v] * (W_neg(< v) + w_neg[v] / 2) / (W_pos * W_neg)
    AP  = sum_v (w_pos[v] / W_pos) * precision at threshold v   (descending)

which is exactly scikit-learn's ``roc_auc_score`` (ties count one half) and
``average_precision_score`` (no interpolation).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "auc_from_cells",
    "average_precision_from_cells",
    "rank_cells",
]


def rank_cells(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, int]:
    """Cell code per row (2 * distinct-score rank + label) and the number of distinct scores."""
    distinct, inverse = np.unique(scores, return_inverse=True)
    return inverse.astype(np.int64) * 2 + positive.astype(np.int64), len(distinct)


def auc_from_cells(w: np.ndarray) -> np.ndarray:
    """AUC from cell weights of shape (B, D, 2) ([..., 0] negatives, [..., 1] positives)."""
    neg, pos = w[..., 0].astype(float), w[..., 1].astype(float)
    neg_below = np.cumsum(neg, axis=-1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=-1)
    den = pos.sum(axis=-1) * neg.sum(axis=-1)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def average_precision_from_cells(w: np.ndarray) -> np.ndarray:
    """Average precision from cell weights of shape (B, D, 2), distinct scores ascending."""
    neg, pos = w[..., 0].astype(float)[..., ::-1], w[..., 1].astype(float)[..., ::-1]
    tp, fp = np.cumsum(pos, axis=-1), np.cumsum(neg, axis=-1)
    precision = np.zeros_like(tp)
    np.divide(tp, tp + fp, out=precision, where=(tp + fp) > 0)
    total = pos.sum(axis=-1)
    out = np.full(total.shape, np.nan)
    np.divide((pos * precision).sum(axis=-1), total, out=out, where=total > 0)
    return out
