"""Agreement scores between pseudo-label maps and true component maps."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline.pseudolabels import quality


def _maps():
    true = [np.array([[0, 1, 1, 2], [0, 1, 2, 2]]), np.array([[3, 3, 0, 1], [0, 0, 0, 1]])]
    pred = [np.array([[5, 2, 2, 1], [0, 2, 1, 0]]), np.array([[4, 1, 0, 2], [7, 7, 7, 2]])]
    return pred, true


def test_foreground_ari_equals_sklearn_on_true_foreground_pixels():
    pred, true = _maps()
    # By hand: the true-foreground pixels in image order, row by row.
    true_fg = [1, 1, 2, 1, 2, 2, 3, 3, 1, 1]
    pred_fg = [2, 2, 1, 2, 1, 0, 4, 1, 2, 2]
    assert quality.foreground_ari(pred, true) == pytest.approx(adjusted_rand_score(true_fg, pred_fg))


def test_foreground_ari_ignores_labels_and_background_of_prediction_outside_foreground():
    true = [np.array([[0, 1, 1, 2, 2]])]
    renamed = [np.array([[9, 7, 7, 3, 3]])]
    assert quality.foreground_ari(renamed, true) == pytest.approx(1.0)
    missed = [np.array([[0, 7, 0, 3, 3]])]  # a missed foreground pixel counts against it
    assert quality.foreground_ari(missed, true) < 1.0


def test_count_classes_and_match_clusters():
    pred, true = _maps()
    assert quality.count_classes(true) == 3
    assert quality.count_classes(pred) == 5
    matching = quality.match_clusters(pred, true)
    assert matching[2] == 1 and matching[1] == 2
    assert len(set(matching.values())) == len(matching)  # one-to-one


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        quality.foreground_ari([np.zeros((2, 2))], [np.zeros((2, 3))])
    with pytest.raises(ValueError):
        quality.foreground_ari([np.zeros((2, 2))], [])
