"""Few-shot fusion calibration maths: non-negative weights, leave-one-out guard, threshold proposal."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics.calibration import (
    CALIBRATED,
    EQUAL,
    CalibrationSettings,
    FusionCalibration,
    best_threshold,
    calibrate_fusion,
    equal_fusion,
    fit_weights,
    leave_one_out_scores,
)

BRANCHES = ("global", "grid", "lgst")


def _informative_first(n_good: int = 20, n_bad: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Branch 0 separates bad from good; branches 1 and 2 are the same noise for both."""
    rng = np.random.default_rng(seed)
    good = rng.normal(0, 1, (n_good, 3))
    bad = rng.normal(0, 1, (n_bad, 3))
    bad[:, 0] += 4.0
    return good, bad


def test_weights_favour_the_separating_branch_and_stay_non_negative():
    good, bad = _informative_first()
    w = fit_weights(good, bad, l2=0.01)
    assert np.all(w >= 0)
    assert w.sum() == pytest.approx(3.0)
    assert w[0] > 2.0 and w[0] > 3 * max(w[1], w[2])


def test_a_branch_that_scores_bad_images_lower_gets_no_weight():
    good, bad = _informative_first()
    bad[:, 2] -= 4.0  # more "normal" on the bad images: a negative weight would use it, ours may not
    w = fit_weights(good, bad, l2=0.01)
    assert w[2] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("n_bad", [0, 1, 2])
def test_fewer_than_a_handful_of_marked_images_keeps_equal_weights(n_bad):
    good, bad = _informative_first(n_bad=max(n_bad, 1))
    cal = calibrate_fusion(good, bad[:n_bad], BRANCHES)
    assert cal.mode == EQUAL and cal.weights == (1.0, 1.0, 1.0)
    assert cal.threshold is None and cal.loo_auroc is None
    assert f"at least {CalibrationSettings().min_marked} bad" in cal.reason


def test_five_marked_images_calibrate_when_leave_one_out_beats_equal_weights():
    good, bad = _informative_first()
    bad[:, 1:] -= 1.5  # the noise branches pull the equal sum down on the bad images
    cal = calibrate_fusion(good, bad, BRANCHES, used_keys=["test/logical/000.png"])
    assert cal.mode == CALIBRATED
    assert cal.loo_auroc > cal.equal_auroc
    assert cal.weights[0] == max(cal.weights)
    assert cal.used_keys == ("test/logical/000.png",)
    assert (cal.n_good, cal.n_bad) == (20, 5)
    assert cal.flagged_good + (cal.n_bad - cal.missed_bad) > 0


def test_no_leave_one_out_gain_keeps_equal_weights_but_proposes_a_threshold():
    rng = np.random.default_rng(1)
    good = rng.normal(0, 1, (20, 3))
    bad = rng.normal(0, 1, (5, 3)) + 6.0  # every branch separates perfectly: equal weights are already 1.0
    cal = calibrate_fusion(good, bad, BRANCHES)
    assert cal.equal_auroc == 1.0 and cal.mode == EQUAL and cal.weights == (1.0, 1.0, 1.0)
    assert "does not beat" in cal.reason
    assert good.sum(1).max() < cal.threshold < bad.sum(1).min()
    assert (cal.flagged_good, cal.missed_bad) == (0, 0)


def test_best_threshold_hand_computed():
    # Midpoints: 1.25 flags good 2 (FPR 1/3) and catches both bad (J = 2/3), the best;
    # 2.5 flags nothing but misses 1.5 (J = 1/2).
    assert best_threshold([0.0, 1.0, 2.0], [1.5, 3.0]) == (1.25, 1, 0)


def test_leave_one_out_score_uses_weights_fitted_without_that_image():
    good, bad = _informative_first(n_good=6, n_bad=3)
    scores = leave_one_out_scores(good, bad, l2=0.1)
    w_without_first_bad = fit_weights(good, bad[1:], 0.1)
    assert scores[6] == pytest.approx(bad[0] @ w_without_first_bad)
    assert scores[6] != pytest.approx(bad[0] @ fit_weights(good, bad, 0.1))


def test_calibration_round_trip_and_score():
    good, bad = _informative_first()
    cal = calibrate_fusion(good, bad, BRANCHES, used_keys=["a", "b"])
    again = FusionCalibration.from_dict(cal.to_dict())
    assert again == cal
    z = {"global": 1.0, "grid": -2.0, "lgst": 0.5}
    assert cal.score(z) == pytest.approx(sum(w * z[b] for b, w in zip(BRANCHES, cal.weights)))


def test_equal_fusion_is_the_methods_own_top_k_sum():
    z = np.array([[3.0, -5.0, 1.0], [-1.0, -2.0, -3.0]])
    np.testing.assert_allclose(equal_fusion(z, 2), [4.0, -3.0])
    np.testing.assert_allclose(equal_fusion(z, 0), [-1.0, -6.0])
    np.testing.assert_allclose(equal_fusion(z, 5), [-1.0, -6.0])
    # one bad image stands out on a single branch only: the top-1 fusion ranks it first, the sum last
    good = np.array([[0.5, 0.5, 0.5], [0.0, 1.0, 0.0], [1.0, 0.0, 0.2], [0.3, 0.3, 0.3]])
    bad = np.array([[4.0, -3.0, -3.0]] * 3)
    top1 = calibrate_fusion(good, bad, BRANCHES, CalibrationSettings(min_marked=3), top_k=1)
    summed = calibrate_fusion(good, bad, BRANCHES, CalibrationSettings(min_marked=3))
    assert top1.equal_auroc == 1.0 and summed.equal_auroc == 0.0
    assert good.max() < top1.threshold < 4.0 and top1.top_k == 1
    assert top1.equal_score({"global": 4.0, "grid": -3.0, "lgst": -3.0}) == pytest.approx(4.0)
    assert FusionCalibration.from_dict(top1.to_dict()) == top1
