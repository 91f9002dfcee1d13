"""Verdict confidence: margin in good-score spreads, borderline band."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation.verdict import judge, score_spread


def test_margin_in_spreads_and_borderline_band():
    far = judge(score=5.0, threshold=2.0, spread=1.5)
    assert far.anomalous and far.margin == pytest.approx(2.0) and not far.borderline
    assert far.label == "ANOMALOUS"
    near = judge(score=1.8, threshold=2.0, spread=1.0)
    assert not near.anomalous and near.margin == pytest.approx(-0.2) and near.borderline
    assert near.label == "good (borderline)"
    assert "0.20 spreads" in near.sentence() and "below" in near.sentence()
    assert not judge(1.8, 2.0, 1.0, borderline_within=0.1).borderline


def test_at_the_threshold_is_good_and_borderline():
    v = judge(2.0, 2.0, 1.0)
    assert not v.anomalous and v.margin == 0 and v.borderline


def test_spread_is_the_trimmed_std_of_validation_scores():
    scores = np.arange(11, dtype=float)  # 20th–80th percentile keeps 2..8: std of 2..8
    assert score_spread(scores) == pytest.approx(np.std(np.arange(2, 9)))
    assert score_spread([3.0] * 5) == 1.0  # no spread at all: taken as 1, as in the fusion


def test_non_positive_spread_is_refused():
    with pytest.raises(ValueError, match="spread"):
        judge(1.0, 0.0, 0.0)
