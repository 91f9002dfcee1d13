"""Receiver operating characteristic curve (own NumPy implementation, sklearn-compatible).

Points are computed exactly like ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``:
one point per distinct score (tied scores move together, giving a diagonal step) plus a
leading ``(0, 0)`` point at threshold ``+inf``. An image is predicted anomalous when its
score is ``>=`` the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RocCurve:
    """ROC curve points, ordered by decreasing threshold.

    Attributes:
        fpr: false-positive rate at each point, non-decreasing, from 0 to 1.
        tpr: true-positive rate at each point, non-decreasing, from 0 to 1.
        thresholds: score threshold of each point (``score >= threshold`` is flagged);
            the first one is ``+inf`` (nothing flagged).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    def to_dict(self) -> dict[str, list[float | None]]:
        """JSON-ready lists; non-finite thresholds (the leading ``+inf``) become ``None``."""
        return {
            "fpr": [float(v) for v in self.fpr],
            "tpr": [float(v) for v in self.tpr],
            "thresholds": [float(v) if np.isfinite(v) else None for v in self.thresholds],
        }


def check_binary(labels: Sequence[int | bool], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to ``(bool labels, float64 scores)`` 1-D arrays; raises ``ValueError``."""
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("labels must be 0/1 or booleans")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (found NaN or inf)")
    return y.astype(bool), s


def roc_curve(labels: Sequence[int | bool], scores: Sequence[float]) -> RocCurve:
    """ROC curve of ``scores`` against binary ``labels`` (1 = anomalous).

    Raises ``ValueError`` when only one class is present (the curve is undefined).
    """
    y, s = check_binary(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise ValueError("ROC needs both classes; only one is present")
    order = np.argsort(s, kind="stable")[::-1]
    s_sorted, y_sorted = s[order], y[order]
    # Last index of each run of equal scores: a threshold flags the whole tie group at once.
    ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[ends]
    fps = ends + 1 - tps
    return RocCurve(
        fpr=np.r_[0.0, fps / fps[-1]],
        tpr=np.r_[0.0, tps / tps[-1]],
        thresholds=np.r_[np.inf, s_sorted[ends]],
    )


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Area under the piecewise-linear curve ``(x, y)`` (``np.trapezoid`` is NumPy 2 only)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
