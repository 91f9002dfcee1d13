"""Image-level AUROC, overall and per defect kind (thesis Table 5.1 protocol).

A defect kind without test images gives ``None`` (JSON null) instead of an error, so a
category with only logical anomalies still gets a report.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.data.samples import KINDS
from pipeline.metrics.roc import check_binary, roc_curve, trapezoid

DEFECT_KINDS = ("logical", "structural", "bad")
"""Kinds compared against good, in report order."""


def auroc(labels: Sequence[int | bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve; ``None`` when only one class is present (or nothing at all)."""
    y, s = check_binary(labels, scores)
    if y.size == 0 or y.all() or not y.any():
        return None
    curve = roc_curve(y, s)
    return trapezoid(curve.tpr, curve.fpr)


def image_auroc_by_kind(kinds: Sequence[str], scores: Sequence[float]) -> dict[str, float | None]:
    """AUROC of each defect kind against the good images, and their mean.

    Returns ``{"logical", "structural", "mean"}`` always, plus ``"bad"`` when a ``bad`` image
    (plain-folder mode) is present. ``mean`` averages the non-``None`` kind values (for LOCO
    data this is the thesis' mean of logical and structural); ``None`` when all are ``None``.
    """
    kind_array = np.asarray(kinds, dtype=object).ravel()
    score_array = np.asarray(scores, dtype=np.float64).ravel()
    if kind_array.shape != score_array.shape:
        raise ValueError(f"kinds and scores differ in length: {kind_array.size} vs {score_array.size}")
    unknown = sorted(set(kind_array.tolist()) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown image kinds {unknown}; expected some of {KINDS}")
    good = kind_array == "good"
    wanted = [k for k in DEFECT_KINDS if k != "bad" or np.any(kind_array == "bad")]
    result: dict[str, float | None] = {}
    for kind in wanted:
        keep = good | (kind_array == kind)
        result[kind] = auroc(kind_array[keep] == kind, score_array[keep])
    present = [v for v in result.values() if v is not None]
    result["mean"] = float(np.mean(present)) if present else None
    return result


def scored_branches(branch_scores: Sequence[dict[str, float]]) -> list[str]:
    """Branch names present on every image, z-scores left out (they rank exactly as their raw scores)."""
    if not branch_scores:
        return []
    return [n for n in branch_scores[0] if not n.startswith("z_") and all(n in b for b in branch_scores)]
