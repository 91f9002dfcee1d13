"""ROC curve and AUROC against sklearn and hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics

from pipeline.metrics.auroc import auroc, image_auroc_by_kind
from pipeline.metrics.roc import roc_curve


def test_hand_example() -> None:
    # Pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8>both yes -> 3 of 4 correctly ordered.
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert auroc(labels, scores) == pytest.approx(0.75)
    curve = roc_curve(labels, scores)
    np.testing.assert_allclose(curve.fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(curve.tpr, [0, 0.5, 0.5, 1, 1])
    assert curve.thresholds[0] == math.inf
    np.testing.assert_allclose(curve.thresholds[1:], [0.8, 0.4, 0.35, 0.1])


def test_ties_count_half() -> None:
    # One positive tied with one negative: that pair counts 1/2 -> (1 + 1 + 0.5 + 1) / 4.
    assert auroc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.875)


@pytest.mark.parametrize("seed", range(6))
def test_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    # Rounded scores create many ties, the case where implementations usually differ.
    scores = np.round(rng.normal(size=n) + 0.7 * labels, 1)
    ours = roc_curve(labels, scores)
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(ours.fpr, fpr)
    np.testing.assert_allclose(ours.tpr, tpr)
    np.testing.assert_allclose(ours.thresholds[1:], thresholds[1:])
    assert auroc(labels, scores) == pytest.approx(metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert auroc(labels.astype(bool), scores) == pytest.approx(auroc(labels, scores))


def test_one_class() -> None:
    assert auroc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert auroc([0, 0], [0.1, 0.2]) is None
    assert auroc([], []) is None
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([0, 0], [0.1, 0.2])


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="length"):
        auroc([0, 1], [0.1])
    with pytest.raises(ValueError, match="0/1"):
        auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        auroc([0, 1], [0.1, float("nan")])


def test_to_dict_is_json_ready() -> None:
    data = roc_curve([0, 1, 1], [0.2, 0.9, 0.5]).to_dict()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["thresholds"][0] is None
    assert back["thresholds"][1:] == [0.9, 0.5, 0.2]
    assert back["fpr"] == [0.0, 0.0, 0.0, 1.0] and back["tpr"] == [0.0, 0.5, 1.0, 1.0]


def test_image_auroc_by_kind_hand_example() -> None:
    kinds = ["good", "good", "logical", "logical", "structural"]
    scores = [0.1, 0.5, 0.9, 0.3, 0.4]
    # logical: 0.9 beats both goods, 0.3 beats only 0.1 -> 3/4; structural: 0.4 beats 0.1 -> 1/2.
    result = image_auroc_by_kind(kinds, scores)
    assert result == pytest.approx({"logical": 0.75, "structural": 0.5, "mean": 0.625})
    assert "bad" not in result


def test_image_auroc_by_kind_missing_kind_is_none() -> None:
    result = image_auroc_by_kind(["good", "good", "logical"], [0.1, 0.2, 0.3])
    assert result == {"logical": 1.0, "structural": None, "mean": 1.0}
    assert image_auroc_by_kind(["good"], [0.1]) == {"logical": None, "structural": None, "mean": None}
    json.dumps(result, allow_nan=False)


def test_image_auroc_by_kind_folder_mode_bad() -> None:
    result = image_auroc_by_kind(["good", "bad", "good", "bad"], [0.1, 0.9, 0.2, 0.15])
    assert result == pytest.approx({"logical": None, "structural": None, "bad": 0.75, "mean": 0.75})


def test_image_auroc_by_kind_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown image kinds"):
        image_auroc_by_kind(["good", "scratch"], [0.1, 0.2])
