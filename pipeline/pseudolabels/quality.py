"""How well pseudo-label maps agree with true component maps (the synthetic benchmark has them).

Maps are integer ``(H, W)`` arrays, 0 = background. Cluster ids are global across a category's
images, so the scores pool the pixels of all images: a class split into two clusters in
different images is penalised, as it would hurt the segmentation network.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score


def foreground_ari(pred_maps: Sequence[np.ndarray], true_maps: Sequence[np.ndarray]) -> float:
    """Adjusted Rand index between predicted and true labels over the pixels that are
    foreground (non-zero) in the true maps, pooled over all images; predicted background (0)
    on such a pixel is a label of its own (a missed part counts against the score)."""
    pred, true = _pooled_foreground(pred_maps, true_maps)
    if len(true) == 0:
        return float("nan")
    return float(adjusted_rand_score(true, pred))


def count_classes(maps: Sequence[np.ndarray]) -> int:
    """Number of distinct non-zero labels over all maps."""
    present: set[int] = set()
    for label_map in maps:
        present.update(int(v) for v in np.unique(label_map) if v != 0)
    return len(present)


def match_clusters(pred_maps: Sequence[np.ndarray], true_maps: Sequence[np.ndarray]) -> dict[int, int]:
    """One-to-one matching of predicted cluster ids to true class ids maximising the pixels
    they share (Hungarian); predicted ids left over (more clusters than classes) are absent."""
    table, pred_ids, true_ids = overlap_table(pred_maps, true_maps)
    if table.size == 0:
        return {}
    rows, cols = linear_sum_assignment(-table)
    return {int(pred_ids[r]): int(true_ids[c]) for r, c in zip(rows, cols) if table[r, c] > 0}


def overlap_table(
    pred_maps: Sequence[np.ndarray], true_maps: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(table, pred_ids, true_ids)``: int ``table[i, j]`` = pixels with predicted id
    ``pred_ids[i]`` and true id ``true_ids[j]``, over all pixels, both background ids excluded."""
    _check(pred_maps, true_maps)
    pred = np.concatenate([np.asarray(p).ravel() for p in pred_maps]) if pred_maps else np.zeros(0, int)
    true = np.concatenate([np.asarray(t).ravel() for t in true_maps]) if true_maps else np.zeros(0, int)
    pred_ids, true_ids = np.unique(pred[pred > 0]), np.unique(true[true > 0])
    both = (pred > 0) & (true > 0)
    rows = np.searchsorted(pred_ids, pred[both])
    cols = np.searchsorted(true_ids, true[both])
    table = np.zeros((len(pred_ids), len(true_ids)), np.int64)
    np.add.at(table, (rows, cols), 1)
    return table, pred_ids, true_ids


def _pooled_foreground(pred_maps: Sequence[np.ndarray], true_maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    _check(pred_maps, true_maps)
    preds, trues = [], []
    for pred, true in zip(pred_maps, true_maps):
        foreground = np.asarray(true) > 0
        preds.append(np.asarray(pred)[foreground].astype(np.int64))
        trues.append(np.asarray(true)[foreground].astype(np.int64))
    if not trues:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(preds), np.concatenate(trues)


def _check(pred_maps: Sequence[np.ndarray], true_maps: Sequence[np.ndarray]) -> None:
    if len(pred_maps) != len(true_maps):
        raise ValueError(f"{len(pred_maps)} predicted maps but {len(true_maps)} true maps")
    for index, (pred, true) in enumerate(zip(pred_maps, true_maps)):
        if np.shape(pred) != np.shape(true):
            raise ValueError(f"map {index}: predicted shape {np.shape(pred)} != true shape {np.shape(true)}")
